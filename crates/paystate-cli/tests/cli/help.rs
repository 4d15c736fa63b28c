use super::*;

#[test]
fn every_command_has_an_example_and_the_offline_ones_say_how_they_meet_a_server() {
    for command in [
        vec!["replay"],
        vec!["audit"],
        vec!["audit", "payment"],
        vec!["audit", "provider"],
        vec!["verify"],
        vec!["export"],
        vec!["import"],
        vec!["demo"],
    ] {
        let mut args = command.clone();
        args.push("--help");
        let help = run(&args).expect_code(0);
        let example = format!("paystate {}", command.join(" "));
        assert!(
            help.stdout.contains("Example") && help.stdout.contains(&example),
            "{command:?}: no example in\n{}",
            help.stdout
        );
        assert!(
            help.stdout.contains("Exit codes"),
            "{command:?}: {}",
            help.stdout
        );
        if command != ["demo"] {
            assert!(
                help.stdout
                    .contains("stop `paystate serve` on that directory first"),
                "{command:?}: {}",
                help.stdout
            );
        }
    }
}
