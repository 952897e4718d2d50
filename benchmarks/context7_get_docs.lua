-- wrk: POST /runsync with one get_docs job (the same every time, so cached after the first).
wrk.method = "POST"
wrk.body = '{"input": {"action": "get_docs", "library_id": "/acme/widgets", "query": "how to install"}}'
wrk.headers["Content-Type"] = "application/json"
