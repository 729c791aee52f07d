//! The Java a node runs: `<java> -version`, which prints the product version "to the error
//! stream" (the launcher's help, JDK 9+), first line `openjdk version "17.0.9" ...` or
//! `java version "1.8.0_191"` (the version-string format of JEP 322). Which `java` a node runs
//! is site-specific (`JAVA_HOME` in `setenv.sh`): the `java` label names it.

use cutover_sdk::cmd;

/// The version on the first line of `java -version`'s output.
pub fn parse(text: &str) -> Option<String> {
    let first = text.lines().find(|l| !l.trim().is_empty())?;
    let rest = first.split_once(" version \"")?.1;
    Some(rest.split('"').next()?.to_string())
}

/// The feature (major) release of a version: the first number, or the second for `1.x`.
pub fn major(version: &str) -> u64 {
    let mut parts = version
        .trim()
        .split(['.', '_', '+', '-'])
        .map(|p| p.parse::<u64>().unwrap_or(0));
    match parts.next() {
        Some(1) => parts.next().unwrap_or(1),
        Some(n) => n,
        None => 0,
    }
}

/// Run `<java> -version` and read its version.
pub fn version(java: &str) -> Result<String, String> {
    let exit = cmd::run(java, &["-version"], Some(30_000)).map_err(|e| e.message)?;
    if exit.code != Some(0) {
        return Err(cmd::describe_failure(java, &exit));
    }
    parse(&exit.stderr)
        .or_else(|| parse(&exit.stdout))
        .ok_or_else(|| {
            format!(
                "`{java} -version` printed no version line: {}",
                exit.stderr.lines().next().unwrap_or("")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(
            parse("openjdk version \"17.0.9\" 2023-10-17\nOpenJDK Runtime").as_deref(),
            Some("17.0.9")
        );
        assert_eq!(
            parse("java version \"1.8.0_191\"\n").as_deref(),
            Some("1.8.0_191")
        );
        assert_eq!(major("1.8.0_191"), 8);
        assert_eq!(major("17.0.9"), 17);
        assert_eq!(major("21"), 21);
    }
}
