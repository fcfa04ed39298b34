//! HTTP/1.x framing, free of sockets so it can be tested by feeding it bytes.

pub mod chunked;
