//! The one-line form of an error and its causes that every binary prints.
//!
//! Our error types and the libraries under them often print their cause inside their own
//! message (`model.onnx: not an ONNX model: {source}`) and also return it as `source()`, and
//! a binary's context often names the same file again (`reading model model.onnx`). Joining
//! the chain naively states the cause two or three times; [`error_line`] states it once.

use std::error::Error;

/// `e` and its causes joined by `: `, leaving out a cause whose text is already on the line,
/// and a leading `PATH: ` of a cause when that path is already on the line.
pub fn error_line(e: &(dyn Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            let rest = match text.split_once(": ") {
                Some((head, rest)) if !head.is_empty() && out.contains(head) => rest,
                _ => text.as_str(),
            };
            if !out.contains(rest) {
                out.push_str(": ");
                out.push_str(rest);
            }
        }
        next = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(String, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl Error for E {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }
    fn chain(texts: &[&str]) -> E {
        texts
            .iter()
            .rev()
            .fold(None, |inner, t| Some(E(t.to_string(), inner.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn each_cause_and_each_path_is_stated_once() {
        let io = "No such file or directory (os error 2)";
        let e = chain(&["reading model m.onnx", &format!("m.onnx: {io}"), io]);
        assert_eq!(error_line(&e), format!("reading model m.onnx: {io}"));
        let e = chain(&[
            "reading the metadata of m.onnx",
            "m.onnx: model metadata `fer.labels`: missing (pass --labels)",
            "model metadata `fer.labels`: missing",
        ]);
        assert_eq!(
            error_line(&e),
            "reading the metadata of m.onnx: model metadata `fer.labels`: missing (pass --labels)"
        );
        // Distinct causes are all kept, in order.
        let e = chain(&["training", "epoch 3", "loss is NaN"]);
        assert_eq!(error_line(&e), "training: epoch 3: loss is NaN");
    }
}
