-- wrk: POST /runsync with a small echo job.
wrk.method = "POST"
wrk.body = '{"input": {"prompt": "hello", "n": 1}}'
wrk.headers["Content-Type"] = "application/json"
