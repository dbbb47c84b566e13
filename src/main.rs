//! The `loadgen` binary: parse the command line, run the library, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = match loadgen::cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                std::process::exit(0);
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                std::process::exit(2);
            }
            // One line: clap's message without its "error: " prefix, usage and tips.
            let rendered = e.to_string();
            let mut line = String::new();
            for l in rendered.lines().map(str::trim) {
                if l.is_empty() || l.starts_with("Usage:") || l.starts_with("For more") {
                    break;
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(l.trim_start_matches("error: "));
            }
            eprintln!("loadgen: {line} (see loadgen --help)");
            std::process::exit(2);
        }
    };
    match loadgen::app::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("loadgen: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
