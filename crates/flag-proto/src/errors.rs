//! How a client prints a transport error.

/// An error and its causes on one line. tonic's transport errors say only "transport error"
/// and keep the useful part (an untrusted certificate, a refused connection) in `source`;
/// a cause already contained in the text so far is not repeated.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}
