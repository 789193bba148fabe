"""The HTTP edge (`autofix serve`): one FastAPI app built by `pipeline.web.app.create_app(settings)`.

Routers live in their own modules and are included by app.py: health.py (/healthz, /readyz),
ingest.py (the SDK's envelope and store endpoints), webhooks.py (Sentry's webhooks). The review UI,
the JSON API and /metrics are added the same way. Nothing here decides anything about an event:
the edge authenticates, bounds and stores the payload raw (inbox), then answers; the inbox stage
(pipeline/inbox.py) does the rest.
"""
