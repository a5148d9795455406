//! TLS for the hyper client: rustls with the ring provider, certificates checked by
//! rustls-platform-verifier against the operating system's roots (plus a target's
//! `ca_file`), as reqwest checks them, so the two clients trust the same servers. ALPN
//! offers `h2` and `http/1.1` (only `h2` when the strategy asks for HTTP/2), and the
//! connection speaks what the server picked. Works over any tokio `AsyncRead` +
//! `AsyncWrite`: tokio's sockets and the io_uring adapter alike.

use rustls::pki_types::{CertificateDer, ServerName};
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// ALPN's name of HTTP/2 over TLS.
const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The TLS side of connections to one host.
#[derive(Clone)]
pub struct TlsSession {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    /// HTTP/2 only: what to speak when the server picks no protocol at all.
    http2_only: bool,
}

impl TlsSession {
    /// TLS to `host` (a name or an IP address), trusting the system's roots and `roots`.
    pub fn new(
        host: &str,
        http2_only: bool,
        roots: &[CertificateDer<'static>],
    ) -> anyhow::Result<TlsSession> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = if roots.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())?
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                roots.iter().cloned(),
                provider.clone(),
            )?
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = match http2_only {
            true => vec![ALPN_H2.to_vec()],
            false => vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()],
        };
        // A bracketed IPv6 host (`[::1]`) is an address, not a name.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string())
            .map_err(|e| anyhow::anyhow!("{host} is not a valid TLS server name: {e}"))?;
        Ok(TlsSession {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            http2_only,
        })
    }

    /// The TLS handshake over `stream`; true with it when the connection is to speak
    /// HTTP/2 (the server picked `h2`, or picked nothing when only `h2` was offered).
    pub async fn connect<S>(&self, stream: S) -> io::Result<(TlsStream<S>, bool)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = self
            .connector
            .connect(self.server_name.clone(), stream)
            .await?;
        let http2 = match stream.get_ref().1.alpn_protocol() {
            Some(protocol) => protocol == ALPN_H2,
            None => self.http2_only,
        };
        Ok((stream, http2))
    }
}
