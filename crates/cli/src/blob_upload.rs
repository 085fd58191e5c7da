//! Uploading a source archive to the URL that `listBuildSourceUploadUrl` returns, the way
//! Azure's blob SDK (`BlobClient.upload_blob(blob_type="BlockBlob", overwrite=True)`) sends
//! it: one Put Blob up to [`SINGLE_PUT_MAX`], else Put Block per [`BLOCK_SIZE`] and one Put
//! Block List. Owns those requests and how a storage error reads; must never send the CLI's
//! management token to the blob endpoint (the SAS query string is the only credential) and
//! never hold more than one block of the archive in memory.

use std::path::Path;

use base64::Engine;
use futures::StreamExt;
use indicatif::ProgressBar;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::StatusCode;
use tokio::io::AsyncReadExt;

use crate::error::CliError;

const MIB: u64 = 1024 * 1024;
/// The largest archive sent in one Put Blob (the SDK's `max_single_put_size`).
pub const SINGLE_PUT_MAX: u64 = 64 * MIB;
/// The size of each Put Block (the SDK's `max_block_size`).
pub const BLOCK_SIZE: u64 = 4 * MIB;
/// How much of the archive one read of a Put Blob's body takes.
const READ_CHUNK: usize = 256 * 1024;
/// The blob service version az's storage SDK sends.
const STORAGE_VERSION: &str = "2026-04-06";

/// Where the upload switches to blocks, and how big they are (tests lower both).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub single_put_max: u64,
    pub block_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { single_put_max: SINGLE_PUT_MAX, block_size: BLOCK_SIZE }
    }
}

/// Python's `urllib.parse.quote` (safe `/`): what the SDK applies inside a block id.
const PY_QUOTE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~').remove(b'/');
/// A query value: everything but the unreserved characters.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'_').remove(b'.').remove(b'-').remove(b'~');

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The SDK's block id for the block at `offset`: `b64(quote(b64("%032d" % offset)))`. All ids
/// of a blob have the same length, as the service requires.
pub fn block_id(offset: u64) -> String {
    let inner = b64(format!("{offset:032}").as_bytes());
    b64(utf8_percent_encode(&inner, PY_QUOTE).to_string().as_bytes())
}

/// `url` with `extra` put before its SAS query, as the SDK orders them
/// (`?comp=block&blockid=…&sv=…&sig=…`).
fn with_query(url: &url::Url, extra: &str) -> url::Url {
    let mut u = url.clone();
    let query = match url.query().filter(|q| !q.is_empty()) {
        Some(sas) => format!("{extra}&{sas}"),
        None => extra.to_string(),
    };
    u.set_query(Some(&query));
    u
}

/// Uploads the file at `path` to `upload_url`, advancing `progress` by the bytes sent.
pub async fn upload_file(
    http: &reqwest::Client,
    upload_url: &str,
    path: &Path,
    limits: Limits,
    progress: &ProgressBar,
) -> Result<(), CliError> {
    let url = url::Url::parse(upload_url)
        .map_err(|e| CliError::Other(format!("the server's upload URL '{upload_url}' is not a URL: {e}")))?;
    let io = |e: std::io::Error| CliError::Other(format!("cannot read {}: {e}", path.display()));
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let size = file.metadata().await.map_err(io)?.len();
    progress.set_length(size);
    if size <= limits.single_put_max {
        let bar = progress.clone();
        let stream = tokio_util::io::ReaderStream::with_capacity(file, READ_CHUNK).inspect(move |chunk| {
            if let Ok(c) = chunk {
                bar.inc(c.len() as u64);
            }
        });
        let resp = http
            .put(url)
            .header("x-ms-blob-type", "BlockBlob")
            .header("x-ms-version", STORAGE_VERSION)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", size)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(send_error)?;
        return expect_created(resp).await;
    }
    let mut ids = Vec::new();
    let mut offset = 0u64;
    while offset < size {
        let mut block = Vec::with_capacity(limits.block_size as usize);
        let n = (&mut file).take(limits.block_size).read_to_end(&mut block).await.map_err(io)?;
        if n == 0 {
            return Err(CliError::Other(format!("{} shrank while it was uploaded", path.display())));
        }
        let id = block_id(offset);
        let target = with_query(&url, &format!("comp=block&blockid={}", utf8_percent_encode(&id, QUERY_VALUE)));
        let resp = http
            .put(target)
            .header("x-ms-version", STORAGE_VERSION)
            .header("Content-Length", n)
            .body(block)
            .send()
            .await
            .map_err(send_error)?;
        expect_created(resp).await?;
        progress.inc(n as u64);
        ids.push(id);
        offset += n as u64;
    }
    let mut xml = String::from("<?xml version='1.0' encoding='utf-8'?>\n<BlockList>");
    for id in &ids {
        xml += &format!("<Latest>{id}</Latest>");
    }
    xml += "</BlockList>";
    let resp = http
        .put(with_query(&url, "comp=blocklist"))
        .header("x-ms-version", STORAGE_VERSION)
        .header("Content-Type", "application/xml")
        .body(xml)
        .send()
        .await
        .map_err(send_error)?;
    expect_created(resp).await
}

fn send_error(e: reqwest::Error) -> CliError {
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        detail.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    CliError::Other(format!("cannot upload the source archive: {detail}"))
}

/// 201 is the only answer the SDK takes; an error's text is the storage `<Message>` and its
/// `ErrorCode:` (from `x-ms-error-code`, else the XML `<Code>`), as az prints them.
async fn expect_created(resp: reqwest::Response) -> Result<(), CliError> {
    let status = resp.status();
    if status == StatusCode::CREATED {
        return Ok(());
    }
    let header_code = resp.headers().get("x-ms-error-code").and_then(|v| v.to_str().ok()).map(str::to_string);
    let body = resp.text().await.unwrap_or_default();
    Err(CliError::Other(storage_error(status, header_code.as_deref(), &body)))
}

fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim())
}

/// The text of a failed blob request.
pub fn storage_error(status: StatusCode, header_code: Option<&str>, body: &str) -> String {
    let code = header_code.or_else(|| xml_element(body, "Code"));
    let mut text = match xml_element(body, "Message") {
        Some(m) => m.to_string(),
        None => format!("Operation returned an invalid status '{}'", status.canonical_reason().unwrap_or("Unknown")),
    };
    if let Some(c) = code {
        text.push_str(&format!("\nErrorCode:{c}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_are_the_sdks() {
        // base64("00000000000000000000000000000000") = "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
        // whose `=` Python's quote turns into %3D before the second base64.
        let inner = "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA%3D";
        assert_eq!(block_id(0), b64(inner.as_bytes()));
        assert_eq!(block_id(0).len(), block_id(4 * MIB * 17).len());
        assert_ne!(block_id(0), block_id(4 * MIB));
    }

    #[test]
    fn the_sas_query_comes_after_the_operation() {
        let u = url::Url::parse("http://h/acct/cont/blob.tar.gz?sv=1&sig=a%2Fb").unwrap();
        assert_eq!(
            with_query(&u, "comp=blocklist").as_str(),
            "http://h/acct/cont/blob.tar.gz?comp=blocklist&sv=1&sig=a%2Fb"
        );
        let bare = url::Url::parse("http://h/acct/cont/blob").unwrap();
        assert_eq!(with_query(&bare, "comp=blocklist").as_str(), "http://h/acct/cont/blob?comp=blocklist");
    }

    #[test]
    fn storage_errors_read_as_az_prints_them() {
        let xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>RequestBodyTooLarge</Code><Message>The request body is too large: the limit is 64 MiB.</Message></Error>";
        assert_eq!(
            storage_error(StatusCode::PAYLOAD_TOO_LARGE, Some("RequestBodyTooLarge"), xml),
            "The request body is too large: the limit is 64 MiB.\nErrorCode:RequestBodyTooLarge"
        );
        assert_eq!(
            storage_error(StatusCode::FORBIDDEN, None, "<Error><Code>AuthenticationFailed</Code></Error>"),
            "Operation returned an invalid status 'Forbidden'\nErrorCode:AuthenticationFailed"
        );
        assert_eq!(storage_error(StatusCode::OK, None, ""), "Operation returned an invalid status 'OK'");
    }
}
