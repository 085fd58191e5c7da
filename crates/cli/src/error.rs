//! CLI errors, rendered once, in az's style (`ERROR: …` on stderr) with az's exit codes.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An error answered by the server in ARM's shape.
    #[error("({code}) {message}")]
    Service { status: u16, code: String, message: String },
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Service { status: 404, .. } | CliError::NotFound(_) => 3,
            CliError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// Prints the error and returns the exit code.
    pub fn report(&self) -> i32 {
        match self {
            CliError::Service { code, message, .. } => {
                eprintln!("ERROR: ({code}) {message}\nCode: {code}\nMessage: {message}");
            }
            other => eprintln!("ERROR: {other}"),
        }
        self.exit_code()
    }
}

impl From<reqwest::Error> for CliError {
    fn from(e: reqwest::Error) -> Self {
        // reqwest's own text hides the cause ("error sending request"); the chain has it.
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            detail.push_str(": ");
            detail.push_str(&cause.to_string());
            source = cause.source();
        }
        let hint = if detail.contains("certificate") || detail.contains("UnknownIssuer") {
            " The server's TLS certificate is not trusted: export REQUESTS_CA_BUNDLE (or WHARF_CA_BUNDLE) with the path of its CA, e.g. {data-dir}/tls/ca.crt."
        } else if e.is_connect() {
            " Is the server running? Point the CLI at it with 'wharf login --server URL'."
        } else {
            ""
        };
        CliError::Other(format!("request to the Wharf server failed: {detail}.{hint}"))
    }
}
