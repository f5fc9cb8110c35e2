"""In-memory fakes of the layer's ports (the store interfaces), for tests/unit: the domain
rules run against them without AWS or moto. One module per domain package."""
