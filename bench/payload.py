"""The request body every load generator sends: a realistic ~310-byte order webhook, and
the GitHub signature the verified connectors check on it."""

from __future__ import annotations

import hashlib
import hmac

ORDER = (
    b'{"event":"order.created","order":{"id":"ord_8f3a2c91","number":10482,"total":129.9,'
    b'"currency":"EUR","status":"paid","source":"web","items":[{"sku":"TSH-BLK-M","qty":2,'
    b'"price":39.95},{"sku":"MUG-WHT","qty":1,"price":50.0}]},"customer":{"email":'
    b'"ana.silva@example.com","phone":"+351912345678","name":"Ana Silva"}}'
)

# The verified connectors: GitHub's scheme, the signature of the one payload sent.
VERIFIED = {"scheme": "github", "secrets": ["bench-secret-0123456789"]}
SIGNED_HEADERS = {
    "X-Hub-Signature-256": "sha256="
    + hmac.new(b"bench-secret-0123456789", ORDER, hashlib.sha256).hexdigest()
}
