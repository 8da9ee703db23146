use super::*;

const ADA: &str = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
const BOT: &str = "81b637d8fcd2c6da6359e6963113a1170de795e4b725b84d1e0b4cfd9ec58ce9";

fn file(principals: &str) -> String {
    format!("principals:\n{principals}")
}

fn entry(name: &str, sha256: &str, role: &str, environments: &str) -> String {
    format!("  - name: {name}\n    sha256: {sha256}\n    role: {role}\n    environments: {environments}\n")
}

/// The problems of `text`, each as `line: path: expected`.
fn problems(text: &str) -> Vec<String> {
    let problems = parse(text, &[]).expect_err("the file is refused");
    problems.iter().map(|p| format!("{}: {p}", p.line.map_or("-".into(), |l| l.to_string()))).collect()
}

fn one_problem(text: &str) -> String {
    let found = problems(text);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap()
}

#[test]
fn a_valid_file_gives_its_principals() {
    let text =
        file(&(entry("ci-bot", BOT, "writer", "[staging, dev]") + &entry("ada", ADA, "admin", "[\"*\"]")));
    let principals = parse(&text, &[]).unwrap();
    assert_eq!(principals.len(), 2);
    let bot = &principals[0];
    assert_eq!((bot.name.as_str(), bot.role), ("ci-bot", Role::Writer));
    assert_eq!(bot.environments, Environments::Only(vec!["staging".into(), "dev".into()]));
    assert_eq!(bot.digest[..3], [0x81, 0xb6, 0x37]);
    assert_eq!(principals[1].environments, Environments::All);
    // Upper-case hex is the same hash, and nobody at all is written out.
    let upper = file(&entry("ci-bot", &BOT.to_uppercase(), "writer", "[staging]"));
    assert_eq!(parse(&upper, &[]).unwrap()[0].digest, bot.digest);
    assert!(parse("principals: []\n", &[]).unwrap().is_empty());
}

#[test]
fn an_unknown_role_names_the_field_its_line_and_the_roles() {
    let text = file(
        &(entry("a", ADA, "reader", "[staging]")
            + &entry("b", BOT, "reader", "[staging]")
            + &entry("c", &"0".repeat(64), "owner", "[staging]")),
    );
    assert_eq!(
        one_problem(&text),
        r#"12: principals[2].role: expected one of admin, writer, reader, sdk, found "owner""#
    );
}

#[test]
fn unknown_fields_are_refused_and_a_secret_is_pointed_to_the_hash() {
    let text = file(&(entry("ci-bot", BOT, "writer", "[staging]") + "    colour: blue\n"));
    assert_eq!(
        one_problem(&text),
        "6: principals[0].colour: unknown field; expected name, sha256, role, environments"
    );
    let text = file(&(entry("ci-bot", BOT, "writer", "[staging]") + "    secret: hunter2\n"));
    let problem = one_problem(&text);
    assert!(
        problem.contains("principals[0].secret: unknown field") && problem.contains("never the secret"),
        "{problem}"
    );
    assert!(!problem.contains("hunter2"), "{problem}");
    let problem = one_problem("principals: []\ntokens: []\n");
    assert!(problem.contains("tokens: unknown field; expected principals"), "{problem}");
}

#[test]
fn the_shape_of_the_file_is_checked() {
    for (text, expected) in [
        (
            "",
            "principals: expected `principals:` with a list of principals (`principals: []` for none), found an empty file",
        ),
        ("# nobody\n", "found an empty file"),
        ("- name: a\n", "found a list"),
        ("other: 1\n", "principals: required"),
        ("principals: ci-bot\n", r#"principals: expected a list of principals, found "ci-bot""#),
        (
            "principals:\n  - ci-bot\n",
            r#"principals[0]: expected a principal (name, sha256, role, environments), found "ci-bot""#,
        ),
        ("principals: [\n", "(file): YAML:"),
    ] {
        let found = problems(text).join("\n");
        assert!(found.contains(expected), "{text:?}: {found}");
    }
}

#[test]
fn each_field_is_required_and_checked() {
    let missing = problems("principals:\n  - {}\n");
    assert_eq!(missing.len(), 4, "{missing:#?}");
    for field in ["name", "sha256", "role", "environments"] {
        assert!(
            missing.iter().any(|p| p.contains(&format!("principals[0].{field}: required"))),
            "{missing:#?}"
        );
    }
    for (name, expected) in [
        (
            "ci bot",
            r#"principals[0].name: expected a name of 1 to 64 letters, digits, '.', '-', '_' or '@', found "ci bot""#,
        ),
        ("''", r#"found """#),
        ("42", "found the number 42"),
        (&"x".repeat(65), "expected a name of 1 to 64"),
    ] {
        let problem = one_problem(&file(&entry(name, BOT, "writer", "[staging]")));
        assert!(problem.contains(expected), "{name}: {problem}");
    }
    for (environments, expected) in [
        (
            "[]",
            "principals[0].environments: expected a list of environment names, or [\"*\"] for all, found an empty list",
        ),
        ("staging", r#"found "staging""#),
        ("['*', staging]", r#"principals[0].environments[0]: "*" means every environment: list it alone"#),
        (
            "[staging, 'pro duction']",
            r#"principals[0].environments[1]: expected an environment name (letters, digits, '_', '.', '-'), found "pro duction""#,
        ),
        ("[staging, staging]", r#"principals[0].environments[1]: "staging" is listed twice"#),
        ("[[staging]]", "principals[0].environments[0]: expected an environment name, found a list"),
    ] {
        let problem = one_problem(&file(&entry("ci-bot", BOT, "writer", environments)));
        assert!(problem.contains(expected), "{environments}: {problem}");
    }
}

#[test]
fn a_hash_that_is_not_64_hex_digits_is_refused_without_echoing_it() {
    for (sha256, found) in [
        ("s3cret-value", "12 characters"),
        (&"g".repeat(64), "64 characters"),
        (&"a".repeat(63), "63 characters"),
    ] {
        let problem = one_problem(&file(&entry("ci-bot", sha256, "writer", "[staging]")));
        assert!(
            problem.contains("principals[0].sha256: expected the SHA-256 of the secret as 64 hex digits"),
            "{problem}"
        );
        assert!(problem.contains(found) && !problem.contains(sha256), "{problem}");
    }
}

#[test]
fn names_and_secrets_are_each_one_principal_s() {
    let text = file(
        &(entry("ci-bot", BOT, "writer", "[staging]")
            + &entry("ci-bot", ADA, "reader", "[staging]")
            + &entry("ana", BOT, "reader", "[staging]")),
    );
    assert_eq!(
        problems(&text),
        [
            r#"6: principals[1].name: "ci-bot" is already the name of principals[0]"#,
            r#"11: principals[2].sha256: the same secret as principals[0] ("ci-bot"): each principal needs its own secret"#,
        ]
    );
}

#[test]
fn the_principals_flagd_makes_itself_are_not_clashed_with() {
    let admin = Principal {
        name: "admin".into(),
        digest: hex_digest(ADA).unwrap(),
        role: Role::Admin,
        environments: Environments::All,
    };
    let reserved = [Reserved { principal: &admin, option: "--admin-token" }];
    let text = file(&(entry("admin", BOT, "reader", "[staging]") + &entry("ops", ADA, "admin", "['*']")));
    let problems = parse(&text, &reserved).unwrap_err();
    let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        problems,
        [
            r#"principals[0].name: "admin" is the name of the principal --admin-token makes; pick another"#,
            "principals[1].sha256: the same secret as --admin-token: each principal needs its own secret",
        ]
    );
}

#[test]
fn a_file_with_problems_lists_each_with_its_line_and_one_that_cannot_be_read_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.yaml");
    std::fs::write(
        &path,
        file(&(entry("ci-bot", BOT, "boss", "[staging]") + &entry("ana", "x", "reader", "[]"))),
    )
    .unwrap();
    let error = load(&path, &[]).unwrap_err().to_string();
    let shown = path.display();
    assert!(error.starts_with(&format!("{shown} is not a valid tokens file:\n")), "{error}");
    assert!(error.contains(&format!("\n  {shown}:4: principals[0].role: expected one of")), "{error}");
    assert!(error.contains(&format!("\n  {shown}:7: principals[1].sha256:")), "{error}");
    assert!(error.contains(&format!("\n  {shown}:9: principals[1].environments:")), "{error}");

    let missing = dir.path().join("nope.yaml");
    let error = load(&missing, &[]).unwrap_err();
    assert!(matches!(&error, TokensError::Read { path, .. } if *path == missing), "{error}");
    assert!(error.to_string().contains("nope.yaml"), "{error}");
}
