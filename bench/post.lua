-- Written by bench/wrkload.py from bench/payload.py: edit the payload there.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[{"event":"order.created","order":{"id":"ord_8f3a2c91","number":10482,"total":129.9,"currency":"EUR","status":"paid","source":"web","items":[{"sku":"TSH-BLK-M","qty":2,"price":39.95},{"sku":"MUG-WHT","qty":1,"price":50.0}]},"customer":{"email":"ana.silva@example.com","phone":"+351912345678","name":"Ana Silva"}}]]
