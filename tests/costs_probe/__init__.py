"""A test app for worker processes (``PROCTOR_EXTRA_APPS=tests.costs_probe``): a "flaky" model provider
whose first attempt at every other step fails with a 503 before the retry answers like the demo no-op looper, priced at OpenAI's
list price, so runs in real workers retry and the ledger sees retries."""
