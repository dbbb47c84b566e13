-- POST a JSON body with a content type: settings in the wrk table change every request.
wrk.method = "POST"
wrk.body   = '{"name":"loadgen"}'
wrk.headers["Content-Type"] = "application/json"
