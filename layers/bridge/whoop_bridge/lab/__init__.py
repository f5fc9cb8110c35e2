"""The lab partner domain: requisitions, service requests, diagnostic reports."""
