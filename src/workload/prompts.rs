//! Real prompts from a file: JSONL with a `prompt` field per line (as many prompt
//! collections ship), or plain text with one prompt per line. Blank lines are skipped.

use super::trace::RowError;
use std::path::Path;
use std::sync::Arc;

pub fn load(path: &Path) -> Result<Vec<Arc<str>>, RowError> {
    let fail = |line: Option<usize>, message: String| RowError {
        file: path.display().to_string(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| fail(None, format!("cannot read the prompts: {e}")))?;
    let jsonl = path
        .extension()
        .is_some_and(|e| e == "jsonl" || e == "ndjson");
    let mut prompts = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let prompt = if jsonl {
            let value: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| fail(Some(i + 1), format!("not JSON: {e}")))?;
            value
                .get("prompt")
                .and_then(|p| p.as_str())
                .ok_or_else(|| fail(Some(i + 1), "no string field \"prompt\"".into()))?
                .to_string()
        } else {
            line.trim().to_string()
        };
        prompts.push(Arc::from(prompt));
    }
    if prompts.is_empty() {
        return Err(fail(None, "the file has no prompts".into()));
    }
    Ok(prompts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_and_text() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = dir.path().join("p.jsonl");
        std::fs::write(
            &jsonl,
            "{\"prompt\": \"say hi\"}\n\n{\"prompt\": \"count to three\", \"id\": 2}\n",
        )
        .unwrap();
        let prompts: Vec<String> = load(&jsonl)
            .unwrap()
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(prompts, ["say hi", "count to three"]);
        let text = dir.path().join("p.txt");
        std::fs::write(&text, "first prompt\nsecond\n").unwrap();
        assert_eq!(load(&text).unwrap().len(), 2);
        std::fs::write(&jsonl, "{\"text\": \"x\"}\n").unwrap();
        let err = crate::workload::WorkloadError::Prompts(load(&jsonl).unwrap_err()).to_string();
        assert!(
            err.ends_with("p.jsonl:1: no string field \"prompt\" (the file of workload.prompts)"),
            "{err}"
        );
    }
}
