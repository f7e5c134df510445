"""The request body every load generator sends: a realistic ~310-byte order webhook."""

from __future__ import annotations

ORDER = (
    b'{"event":"order.created","order":{"id":"ord_8f3a2c91","number":10482,"total":129.9,'
    b'"currency":"EUR","status":"paid","source":"web","items":[{"sku":"TSH-BLK-M","qty":2,'
    b'"price":39.95},{"sku":"MUG-WHT","qty":1,"price":50.0}]},"customer":{"email":'
    b'"ana.silva@example.com","phone":"+351912345678","name":"Ana Silva"}}'
)
