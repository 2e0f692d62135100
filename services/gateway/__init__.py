"""Gateway: serves the web page and the WebSocket protocol, bridges browsers and Redis streams."""
