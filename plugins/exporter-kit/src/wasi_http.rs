//! A small blocking HTTP/1.1 client over `wasi:http/outgoing-handler`.
//! The host decides which authorities may be reached (the exporter's
//! `allowed_hosts` grant) and bounds the whole call with its time limit.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

/// What came back.
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The first bytes of the body (for error messages).
    pub body: Vec<u8>,
}

/// Send one request and wait for the response status and (up to 64 KiB of) body.
pub fn send(
    method: &str,
    https: bool,
    authority: &str,
    path_with_query: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout_ms: u64,
) -> Result<Response, String> {
    let mut fields: Vec<(String, Vec<u8>)> = headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec())).collect();
    // The whole body is known: say its length, so it goes out with
    // `Content-Length` rather than chunked (the Datadog agent wants it).
    if method != "GET" && !fields.iter().any(|(k, _)| k == "content-length") {
        fields.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&fields).map_err(|e| format!("bad request header: {e:?}"))?;
    let req = OutgoingRequest::new(fields);
    let m = match method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        other => Method::Other(other.to_string()),
    };
    req.set_method(&m).map_err(|_| format!("bad method {method}"))?;
    req.set_scheme(Some(if https { &Scheme::Https } else { &Scheme::Http })).map_err(|_| "bad scheme".to_string())?;
    req.set_authority(Some(authority)).map_err(|_| format!("bad authority {authority:?}"))?;
    req.set_path_with_query(Some(path_with_query)).map_err(|_| format!("bad path {path_with_query:?}"))?;
    let out_body = req.body().map_err(|_| "request body already taken".to_string())?;

    let opts = RequestOptions::new();
    let ns = timeout_ms.saturating_mul(1_000_000);
    let _ = opts.set_connect_timeout(Some(ns));
    let _ = opts.set_first_byte_timeout(Some(ns));
    let _ = opts.set_between_bytes_timeout(Some(ns));

    let future = outgoing_handler::handle(req, Some(opts)).map_err(|e| describe(&e, authority))?;
    {
        let stream = out_body.write().map_err(|_| "request body stream unavailable".to_string())?;
        for chunk in body.chunks(4096) {
            stream.blocking_write_and_flush(chunk).map_err(|e| format!("writing the request body to {authority}: {e:?}"))?;
        }
    }
    OutgoingBody::finish(out_body, None).map_err(|e| describe(&e, authority))?;

    let response = loop {
        match future.get() {
            Some(Ok(Ok(resp))) => break resp,
            Some(Ok(Err(e))) => return Err(describe(&e, authority)),
            Some(Err(())) => return Err("response already taken".into()),
            None => future.subscribe().block(),
        }
    };
    let status = response.status();
    let mut buf = Vec::new();
    if let Ok(incoming) = response.consume() {
        if let Ok(stream) = incoming.stream() {
            while buf.len() < 64 * 1024 {
                match stream.blocking_read(16 * 1024) {
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => buf.extend_from_slice(&bytes),
                    Err(_) => break, // closed
                }
            }
        }
    }
    Ok(Response { status, body: buf })
}

fn describe(e: &ErrorCode, authority: &str) -> String {
    match e {
        ErrorCode::DnsError(_) => format!("{authority}: DNS lookup failed"),
        ErrorCode::ConnectionRefused => format!("{authority}: connection refused"),
        ErrorCode::ConnectionTimeout => format!("{authority}: connect timed out"),
        ErrorCode::ConnectionReadTimeout => format!("{authority}: read timed out"),
        ErrorCode::HttpRequestDenied => format!("{authority}: not in this exporter's allowed_hosts grant"),
        other => format!("{authority}: {other:?}"),
    }
}
