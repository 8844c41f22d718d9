-- wrk script: POST /api/token/ with the demo admin's credentials.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"username": "admin", "password": "Leopard-Demo-2026"}'
