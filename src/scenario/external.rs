//! An `external` strategy's `command`: the program that sends the requests itself, and
//! its arguments, checked where it is read (a program name, no NUL bytes, bounded).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// Most arguments a command may have, program included.
const MAX_ARGS: usize = 256;
/// Longest argument, in bytes.
const MAX_ARG_BYTES: usize = 4096;

/// `command = ["python3", "clients/python/gather.py"]`: the program (found on `PATH`
/// unless it holds a `/`; a relative path is taken from the folder llmbench runs in)
/// and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ProgramCommand(pub Vec<String>);

impl<'de> Deserialize<'de> for ProgramCommand {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let args = Vec::<String>::deserialize(d)?;
        let error = |why: &str| {
            de::Error::custom(format!(
                "{why}: give the program and its arguments, such as [\"python3\", \"clients/python/gather.py\"]"
            ))
        };
        match args.first() {
            None => return Err(error("the command is empty")),
            Some(program) if program.trim().is_empty() => {
                return Err(error("the program's name is empty"));
            }
            _ => {}
        }
        if args.len() > MAX_ARGS {
            return Err(error(&format!("more than {MAX_ARGS} arguments")));
        }
        if let Some(arg) = args.iter().find(|a| a.len() > MAX_ARG_BYTES) {
            let start: String = arg.chars().take(40).collect();
            return Err(error(&format!(
                "argument \"{start}…\" is longer than {MAX_ARG_BYTES} bytes"
            )));
        }
        if args.iter().any(|a| a.contains('\0')) {
            return Err(error(
                "an argument holds a NUL byte, which no program can be given",
            ));
        }
        Ok(ProgramCommand(args))
    }
}

impl ProgramCommand {
    /// The program to start.
    pub fn program(&self) -> &str {
        &self.0[0]
    }

    /// A name for tables and files: the script's file stem and the options after it
    /// (`["python3", "clients/python/taskgroup.py", "--uvloop"]` → `taskgroup-uvloop`),
    /// or the program's own stem when it has no script.
    pub fn name(&self) -> String {
        let mut rest = self.0.iter().skip(1).skip_while(|a| a.starts_with('-'));
        let (stem_of, options) = match rest.next() {
            Some(script) => (script, rest.collect::<Vec<_>>()),
            None => (&self.0[0], Vec::new()),
        };
        let stem = std::path::Path::new(stem_of)
            .file_stem()
            .map_or_else(|| stem_of.clone(), |s| s.to_string_lossy().into_owned());
        let mut name = stem;
        for option in options {
            name.push('-');
            name.push_str(option.trim_start_matches('-'));
        }
        let name: String = name
            .chars()
            .map(
                |c| match c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    true => c,
                    false => '-',
                },
            )
            .take(64)
            .collect();
        match name.trim_matches(['-', '.']) {
            "" => "external".into(),
            name => name.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(args: &[&str]) -> ProgramCommand {
        ProgramCommand(args.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn names_come_from_the_script_and_its_options() {
        let name = |args: &[&str]| command(args).name();
        assert_eq!(name(&["python3", "clients/python/gather.py"]), "gather");
        assert_eq!(
            name(&["python3", "-u", "clients/python/taskgroup.py", "--uvloop"]),
            "taskgroup-uvloop"
        );
        assert_eq!(name(&["./bin/my client"]), "my-client");
        assert_eq!(name(&["/"]), "external");
    }

    #[test]
    fn bad_commands_are_refused_with_the_reason() {
        let read = |text: &str| {
            toml::from_str::<std::collections::BTreeMap<String, ProgramCommand>>(text)
                .map_err(|e| e.to_string())
        };
        assert!(read("c = []").unwrap_err().contains("the command is empty"));
        assert!(read("c = [\"\"]").unwrap_err().contains("name is empty"));
        assert!(read("c = [\"a\\u0000b\"]").unwrap_err().contains("NUL"));
        assert!(read("c = [\"python3\", \"x.py\"]").is_ok());
    }
}
