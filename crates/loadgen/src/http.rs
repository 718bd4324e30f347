//! A minimal HTTP/1.1 client over one keep-alive `TcpStream`: enough to read the API's
//! responses (`Content-Length` or chunked bodies), nothing more.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One keep-alive connection and its read buffer.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Connection {
    /// Connects to `addr` with `TCP_NODELAY` (as the server's sockets are).
    ///
    /// # Errors
    /// The connect error.
    pub async fn open(addr: &str) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(16 * 1024),
        })
    }

    /// Reads more bytes into the buffer; an end of stream is an error.
    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Sends one request and reads its whole response; returns the status code.
    ///
    /// # Errors
    /// I/O errors and responses this client cannot parse; the connection is then unusable.
    pub async fn exchange(&mut self, request: &[u8]) -> io::Result<u16> {
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.fill().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..head_end]).map_err(|_| invalid("head"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("status line"))?;
        let mut length = None;
        let mut chunked = false;
        for line in head.split("\r\n").skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.parse::<usize>().map_err(|_| invalid("length"))?);
                } else if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        self.buffer.drain(..head_end);
        if chunked {
            self.skip_chunked().await?;
        } else {
            let length = length.unwrap_or(0);
            while self.buffer.len() < length {
                self.fill().await?;
            }
            self.buffer.drain(..length);
        }
        Ok(status)
    }

    async fn skip_chunked(&mut self) -> io::Result<()> {
        loop {
            let line_end = loop {
                if let Some(end) = find(&self.buffer, b"\r\n") {
                    break end;
                }
                self.fill().await?;
            };
            let size_text =
                std::str::from_utf8(&self.buffer[..line_end]).map_err(|_| invalid("chunk"))?;
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| invalid("chunk size"))?;
            // The chunk, then its CRLF (for the last, empty chunk: the final CRLF).
            let needed = line_end + 2 + size + 2;
            while self.buffer.len() < needed {
                self.fill().await?;
            }
            self.buffer.drain(..needed);
            if size == 0 {
                return Ok(());
            }
        }
    }
}
