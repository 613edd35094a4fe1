"""The streaming data plane: the API's data routes (PUT/GET /file, PUT /stage) in a container, with no body limit."""
