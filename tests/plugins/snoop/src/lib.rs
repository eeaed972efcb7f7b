//! Tries to reach what it was not granted: files, environment variables,
//! sockets and HTTP hosts. Each tool reports what happened as text
//! (`is_error` when access was refused), so tests see the guest's view.
use logai_plugin_sdk::{export_tools, json, log, CallResult, Context, RawTool, ToolError, ToolSpec};

fn one_string(field: &str) -> serde_json::Value {
    json!({"type": "object", "properties": {field: {"type": "string"}}, "required": [field]})
}

/// Reads a file.
pub struct ReadFile;
impl RawTool for ReadFile {
    fn spec() -> ToolSpec {
        ToolSpec::new("read_file", "Reads a file.", one_string("path"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let path: String = ctx.arg("path")?.unwrap_or_default();
        Ok(match std::fs::read_to_string(&path) {
            Ok(text) => CallResult::text(text),
            Err(e) => CallResult::error(format!("cannot read {path}: {e}")),
        })
    }
}

/// Lists a directory.
pub struct ListDir;
impl RawTool for ListDir {
    fn spec() -> ToolSpec {
        ToolSpec::new("list_dir", "Lists a directory.", one_string("path"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let path: String = ctx.arg("path")?.unwrap_or_default();
        Ok(match std::fs::read_dir(&path) {
            Ok(rd) => {
                let mut names: Vec<String> = rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect();
                names.sort();
                CallResult::text(names.join("\n"))
            }
            Err(e) => CallResult::error(format!("cannot list {path}: {e}")),
        })
    }
}

/// Writes a file (read-only grants must refuse it).
pub struct WriteFile;
impl RawTool for WriteFile {
    fn spec() -> ToolSpec {
        ToolSpec::new("write_file", "Writes a file.", one_string("path"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let path: String = ctx.arg("path")?.unwrap_or_default();
        Ok(match std::fs::write(&path, b"written by a plugin") {
            Ok(()) => CallResult::text(format!("wrote {path}")),
            Err(e) => CallResult::error(format!("cannot write {path}: {e}")),
        })
    }
}

/// Reads an environment variable.
pub struct ReadEnv;
impl RawTool for ReadEnv {
    fn spec() -> ToolSpec {
        ToolSpec::new("read_env", "Reads an environment variable.", one_string("name"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let name: String = ctx.arg("name")?.unwrap_or_default();
        let count = std::env::vars().count();
        Ok(match std::env::var(&name) {
            Ok(v) => CallResult::text(format!("{name}={v}")),
            Err(e) => CallResult::error(format!("cannot read environment variable {name}: {e} ({count} variables visible)")),
        })
    }
}

/// Opens a TCP connection and reads a line.
pub struct Connect;
impl RawTool for Connect {
    fn spec() -> ToolSpec {
        ToolSpec::new("connect", "Opens a TCP connection.", one_string("addr"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        use std::io::Read;
        let addr: String = ctx.arg("addr")?.unwrap_or_default();
        Ok(match std::net::TcpStream::connect(&addr) {
            Ok(mut s) => {
                let mut buf = [0u8; 64];
                let n = s.read(&mut buf).unwrap_or(0);
                CallResult::text(format!("connected to {addr}: {}", String::from_utf8_lossy(&buf[..n])))
            }
            Err(e) => {
                log::warn(format!("connect to {addr} failed: {e}"));
                CallResult::error(format!("cannot connect to {addr}: {e}"))
            }
        })
    }
}

/// Sends one UDP datagram.
pub struct UdpSend;
impl RawTool for UdpSend {
    fn spec() -> ToolSpec {
        ToolSpec::new("udp_send", "Sends a UDP datagram.", one_string("addr"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let addr: String = ctx.arg("addr")?.unwrap_or_default();
        let r = std::net::UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(b"logai.test:1|c", &addr));
        Ok(match r {
            Ok(n) => CallResult::text(format!("sent {n} bytes to {addr}")),
            Err(e) => CallResult::error(format!("cannot send to {addr}: {e}")),
        })
    }
}

/// Makes an HTTP GET through wasi:http.
pub struct HttpGet;
impl RawTool for HttpGet {
    fn spec() -> ToolSpec {
        ToolSpec::new("http_get", "GETs http://{authority}/.", one_string("authority"))
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let authority: String = ctx.arg("authority")?.unwrap_or_default();
        Ok(match http_get(&authority) {
            Ok(status) => CallResult::text(format!("GET http://{authority}/ -> {status}")),
            Err(e) => CallResult::error(format!("GET http://{authority}/ failed: {e}")),
        })
    }
}

#[cfg(target_arch = "wasm32")]
fn http_get(authority: &str) -> Result<u16, String> {
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    let req = OutgoingRequest::new(Fields::new());
    req.set_method(&Method::Get).map_err(|_| "bad method")?;
    req.set_scheme(Some(&Scheme::Http)).map_err(|_| "bad scheme")?;
    req.set_authority(Some(authority)).map_err(|_| "bad authority")?;
    req.set_path_with_query(Some("/")).map_err(|_| "bad path")?;
    let body = req.body().map_err(|_| "no body")?;
    let fut = outgoing_handler::handle(req, None).map_err(|e| format!("{e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    loop {
        match fut.get() {
            Some(Ok(Ok(resp))) => return Ok(resp.status()),
            Some(Ok(Err(e))) => return Err(format!("{e:?}")),
            Some(Err(())) => return Err("response taken twice".into()),
            None => fut.subscribe().block(),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn http_get(_authority: &str) -> Result<u16, String> {
    Err("only in a component".into())
}

/// Reads a file and a variable through the SDK's helpers, which name the
/// grant a denied access needs (the host never sees such attempts).
pub struct SdkRead;
impl RawTool for SdkRead {
    fn spec() -> ToolSpec {
        ToolSpec::new(
            "sdk_read",
            "Reads a file and an environment variable through the SDK.",
            json!({"type": "object", "properties": {"path": {"type": "string"}, "name": {"type": "string"}}}),
        )
    }
    fn call(ctx: &Context) -> Result<CallResult, ToolError> {
        let mut out = Vec::new();
        if let Some(path) = ctx.arg::<String>("path")? {
            out.push(match logai_plugin_sdk::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => e.to_string(),
            });
        }
        if let Some(name) = ctx.arg::<String>("name")? {
            out.push(match logai_plugin_sdk::env::var(&name) {
                Ok(v) => format!("{name}={v}"),
                Err(e) => e.to_string(),
            });
        }
        Ok(CallResult::text(out.join("\n")))
    }
}

export_tools!(ReadFile, ListDir, WriteFile, ReadEnv, Connect, UdpSend, HttpGet, SdkRead);
