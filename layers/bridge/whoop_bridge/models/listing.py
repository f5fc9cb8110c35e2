"""What the paged listings share: the refusal of a page token the listing did not issue."""


class InvalidPageToken(ValueError):
    """A `next_token` this listing did not issue, for these parameters; the APIs answer 400
    naming `next_token`."""
