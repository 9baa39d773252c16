# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_faxgate_global_optspecs
    string join \n c/config= h/help V/version
end

function __fish_faxgate_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_faxgate_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_faxgate_using_subcommand
    set -l cmd (__fish_faxgate_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c faxgate -n "__fish_faxgate_needs_command" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_needs_command" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_needs_command" -s V -l version -d 'Print version'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "run" -d 'Run the gateway until SIGTERM or SIGINT'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "status" -d 'Show the modems (state, last call, last error), the queue and recent jobs: from the running daemon (control socket), or from the spool when it is stopped'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "check-config" -d 'Check a config file (or the effective one): print it with secrets redacted, or every error with its key and origin, and every file it names that cannot be read (users, TLS, relay password). Exit 0 when `faxgate run` would start with it, 1 otherwise'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "modem" -d 'Fax modem tools'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "send" -d 'Send one fax through a Class 1 or Class 2.0 modem (the profile\'s `class`): dial NUMBER, send the pages of FILEs (TIFF)'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "receive" -d 'Answer one fax call on a Class 1 or Class 2.0 modem (the profile\'s `class`) and write the pages to DIR/fax.tif'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "convert" -d 'Convert a bilevel TIFF to TIFF-F (MH = Profile S, MR/MMR = Profile F), resampling when the resolution changes'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "tiff-check" -d 'Check TIFF files against RFC 3949 Profile S (or F): every violation with page and field; exit 1 on any'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "queue" -d 'Look at and steer the spool: list, show, retry, cancel, purge'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "onramp" -d 'The onramp: `submit FILE... [--to ADDR]` queues files as received faxes'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "hash-password" -d 'Print a `smtp.users_file` line for USER; the password is read from standard input'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "token" -d 'REST API tokens: `create USER` prints a new token once and keeps only its hash in `http.tokens_file`'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "offramp-check" -d 'Show what would be faxed for an email (parts taken and skipped, options, page count or the failure the sender would be told); optionally write the pages as TIFF-F'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "render" -d 'Render PDF, TIFF, pictures, text and HTML into fax pages: a TIFF-F (and PNG previews)'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "setup" -d 'First run: find the fax modems, ask for the mail domain, relay and admin address, and write a checked configuration to /etc/faxgate/faxgate.toml (or --config FILE), shown as a diff and never replaced without a yes'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "generate-docs" -d 'Write the man pages and the bash/zsh/fish completions under DIR (the Debian package\'s are made with `generate-docs systemd/debian`)'
complete -c faxgate -n "__fish_faxgate_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand run" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand run" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand status" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand status" -l json -d 'Print JSON instead of text'
complete -c faxgate -n "__fish_faxgate_using_subcommand status" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand check-config" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and not __fish_seen_subcommand_from probe emulate help" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and not __fish_seen_subcommand_from probe emulate help" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and not __fish_seen_subcommand_from probe emulate help" -f -a "probe" -d 'Initialise the modem on DEV and print what it offers (identity, classes, speeds)'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and not __fish_seen_subcommand_from probe emulate help" -f -a "emulate" -d 'Be a Class 2.0 (T.32) fax modem on a pseudo-terminal linked at PATH, carrying its calls through the Class 1 modem on DEV with faxgate\'s T.30 engine. Host software (mgetty\'s sendfax, HylaFAX, faxgate with a Class 2.0 profile) opens PATH as its modem and sends (ATD, +FDT) or receives: DEV\'s rings are reported as RING and answered on ATA (or after ATS0=n rings) when the host has set AT+FCR=1. Runs until killed'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and not __fish_seen_subcommand_from probe emulate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -l profile -d 'Modem profile file (default: the built-in generic Class 1 profile)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from probe" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l class -d 'Fax class to offer: only 2.0' -r -f -a "2.0\t''"
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l line -d 'The Class 1 modem that carries the calls, e.g. /dev/ttyACM0' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l pty -d 'Where to link the pseudo-terminal (replaced if it exists)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l profile -d 'Modem profile file (default: the built-in generic Class 1 profile)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l local-id -d 'Our station ID (TSI/CSI), up to 20 characters' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l max-rate -d 'Highest rate, bit/s' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l trace -d 'Write the call\'s raw trace (AT traffic and decoded frames) to FILE' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -l no-ecm -d 'Do not use error correction (T.30 Annex A)'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from emulate" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from help" -f -a "probe" -d 'Initialise the modem on DEV and print what it offers (identity, classes, speeds)'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from help" -f -a "emulate" -d 'Be a Class 2.0 (T.32) fax modem on a pseudo-terminal linked at PATH, carrying its calls through the Class 1 modem on DEV with faxgate\'s T.30 engine. Host software (mgetty\'s sendfax, HylaFAX, faxgate with a Class 2.0 profile) opens PATH as its modem and sends (ATD, +FDT) or receives: DEV\'s rings are reported as RING and answered on ATA (or after ATS0=n rings) when the host has set AT+FCR=1. Runs until killed'
complete -c faxgate -n "__fish_faxgate_using_subcommand modem; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -l modem -d 'Serial device of the modem' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -l profile -d 'Modem profile file (default: the built-in generic Class 1 profile)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -l local-id -d 'Our station ID (TSI/CSI), up to 20 characters' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -l max-rate -d 'Highest rate, bit/s' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -l trace -d 'Write the call\'s raw trace (AT traffic and decoded frames) to FILE' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -l no-ecm -d 'Do not use error correction (T.30 Annex A)'
complete -c faxgate -n "__fish_faxgate_using_subcommand send" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l modem -d 'Serial device of the modem' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l out -d 'Directory for the received fax: created when missing and checked writable before the call is answered; if writing there fails all the same, the fax is kept in the data directory\'s `failed/` and the path printed' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l rings -d 'Answer after this many rings' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l wait -d 'Give up when no call comes within this many seconds' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l profile -d 'Modem profile file (default: the built-in generic Class 1 profile)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l local-id -d 'Our station ID (TSI/CSI), up to 20 characters' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l max-rate -d 'Highest rate, bit/s' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l trace -d 'Write the call\'s raw trace (AT traffic and decoded frames) to FILE' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -l no-ecm -d 'Do not use error correction (T.30 Annex A)'
complete -c faxgate -n "__fish_faxgate_using_subcommand receive" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand convert" -l coding -d 'Coding of the output' -r -f -a "mh\t'T.4 modified Huffman (Profile S when 1728 wide at 98/196 dpi)'
mr\t'T.4 modified READ, K from the vertical resolution (Profile F)'
mmr\t'T.6 modified modified READ (Profile F)'"
complete -c faxgate -n "__fish_faxgate_using_subcommand convert" -l resolution -d 'Resample every page to this vertical resolution' -r -f -a "standard\t'98 lines per inch (T.4 3.85 l/mm)'
fine\t'196 lines per inch (T.4 7.7 l/mm)'"
complete -c faxgate -n "__fish_faxgate_using_subcommand convert" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand convert" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c faxgate -n "__fish_faxgate_using_subcommand tiff-check" -l profile -d 'Profile to check against' -r -f -a "s\t'RFC 3949 Profile S (minimal)'
f\t'RFC 3949 Profile F (extended black and white)'"
complete -c faxgate -n "__fish_faxgate_using_subcommand tiff-check" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand tiff-check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -l spool -d 'Spool directory (default: `spool.dir` of the configuration)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "list" -d 'List queued jobs (with --all also done and failed ones)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "show" -d 'Print a job\'s record (JSON) and payload files'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "retry" -d 'Make a queued job due now, or bring a failed one back; its limits start afresh'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "cancel" -d 'Give a queued job up (it moves to `failed/` as cancelled)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "purge" -d 'Remove archived jobs past their retention (`spool.keep_done`, `spool.keep_failed`)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "crash-child" -d 'Test helper: own the spool and create, commit, update and finish jobs in a loop, printing each acknowledged step, until killed (the crash test SIGKILLs it)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and not __fish_seen_subcommand_from list show retry cancel purge crash-child help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from list" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from list" -l all -d 'Include `done/` and `failed/`'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from show" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from retry" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from retry" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from cancel" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from cancel" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from purge" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from purge" -l all -d 'Remove every archived job, whatever its age'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from purge" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from crash-child" -l seed -d 'Seed of the action sequence' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from crash-child" -l actions -d 'Stop after this many actions (bounded loop)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from crash-child" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from crash-child" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "list" -d 'List queued jobs (with --all also done and failed ones)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "show" -d 'Print a job\'s record (JSON) and payload files'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "retry" -d 'Make a queued job due now, or bring a failed one back; its limits start afresh'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "cancel" -d 'Give a queued job up (it moves to `failed/` as cancelled)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "purge" -d 'Remove archived jobs past their retention (`spool.keep_done`, `spool.keep_failed`)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "crash-child" -d 'Test helper: own the spool and create, commit, update and finish jobs in a loop, printing each acknowledged step, until killed (the crash test SIGKILLs it)'
complete -c faxgate -n "__fish_faxgate_using_subcommand queue; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and not __fish_seen_subcommand_from submit help" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and not __fish_seen_subcommand_from submit help" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and not __fish_seen_subcommand_from submit help" -f -a "submit" -d 'Queue files as received faxes (routed and mailed by the running daemon)'
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and not __fish_seen_subcommand_from submit help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and __fish_seen_subcommand_from submit" -l to -d 'Recipient replacing the route\'s (repeatable)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and __fish_seen_subcommand_from submit" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and __fish_seen_subcommand_from submit" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and __fish_seen_subcommand_from help" -f -a "submit" -d 'Queue files as received faxes (routed and mailed by the running daemon)'
complete -c faxgate -n "__fish_faxgate_using_subcommand onramp; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand hash-password" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand hash-password" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and not __fish_seen_subcommand_from create help" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and not __fish_seen_subcommand_from create help" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and not __fish_seen_subcommand_from create help" -f -a "create" -d 'Make a new API token for USER and print it (once; only its hash is kept)'
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and not __fish_seen_subcommand_from create help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and __fish_seen_subcommand_from create" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a new API token for USER and print it (once; only its hash is kept)'
complete -c faxgate -n "__fish_faxgate_using_subcommand token; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand offramp-check" -l out -d 'Write the fax pages to this TIFF file' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand offramp-check" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand offramp-check" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -s o -l output -d 'Output TIFF-F file (MH, RFC 3949 Profile S; superfine is written as Profile F)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l resolution -d 'standard (98 lpi), fine (196 lpi) or superfine (391 lpi)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l paper -d 'a4, letter or auto (as long as the content)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l bilevel -d 'auto (per page), threshold or dither' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l header -d 'Header line template; fields {date} {time} {station} {sender} {page} {pages} {recipient}. Default: the `[offramp] header` default. `--header \'\'` prints none' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l sender -d 'Sender name for {sender}' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l station -d 'Station ID for {station}' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l to -d 'Recipient number for {recipient}' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l cover -d 'Add a cover page (built-in template) with this subject' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l max-pages -d 'Pages per document at most' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l time-limit -d 'Give up when rendering one input takes longer than this (e.g. `30s`; `0s`: no limit), as `[offramp] render_time_limit` does for a message' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l work-limit -d 'Give up on a page that needs more work units than this (`0`: no limit), as `[offramp] render_work_limit`' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l png -d 'Also write one PNG per page into this directory (page-001.png, …) for a person to look at; fax pixels are not square, so the previews are stretched to square pixels' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -l pdf-font-dir -d 'Directory of URW base-35 fonts for PDFs that use a standard font without embedding it (as `[offramp] pdf_font_dir`); `\'\'` uses the renderer\'s built-in substitutes only' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand render" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l mail-domain -d 'Mail domain served: faxes are sent to FAX=+NUMBER@DOMAIN' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l relay -d 'Mail relay for received faxes and reports: HOST or HOST:PORT' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l relay-security -d 'TLS towards the relay: none, opportunistic, starttls or tls' -r -f -a "none\t''
opportunistic\t''
starttls\t''
tls\t''"
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l admin -d 'Operator mailbox (reports, dead letters); its domain becomes the allowed senders' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l hostname -d 'This box\'s DNS name (default: the system\'s host name)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l device -d 'Serial device to probe (repeatable; default: /dev/ttyACM*, /dev/ttyUSB*, /dev/faxmodem*)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l profile -d 'Modem profile for the modems found (a file PROFILES_DIR/NAME.toml)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l profiles-dir -d 'Directory of the modem profiles' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l local-id -d 'Station ID sent as TSI/CSI (the fax number, e.g. "+1 212 555 0100")' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l listen -d 'SMTP listen address (repeatable; default: as in the existing config)' -r
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l data-dir -d 'Spool directory (default: as in the existing config)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l yes -d 'Do not ask: take the answers from the flags and the defaults'
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -l force -d 'Replace an existing, different config file (scripted runs; interactive runs ask)'
complete -c faxgate -n "__fish_faxgate_using_subcommand setup" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand generate-docs" -s c -l config -d 'Config file (default: ./faxgate.toml, else /etc/faxgate/faxgate.toml if present, else the embedded default)' -r -F
complete -c faxgate -n "__fish_faxgate_using_subcommand generate-docs" -s h -l help -d 'Print help'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "run" -d 'Run the gateway until SIGTERM or SIGINT'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "status" -d 'Show the modems (state, last call, last error), the queue and recent jobs: from the running daemon (control socket), or from the spool when it is stopped'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "check-config" -d 'Check a config file (or the effective one): print it with secrets redacted, or every error with its key and origin, and every file it names that cannot be read (users, TLS, relay password). Exit 0 when `faxgate run` would start with it, 1 otherwise'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "modem" -d 'Fax modem tools'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "send" -d 'Send one fax through a Class 1 or Class 2.0 modem (the profile\'s `class`): dial NUMBER, send the pages of FILEs (TIFF)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "receive" -d 'Answer one fax call on a Class 1 or Class 2.0 modem (the profile\'s `class`) and write the pages to DIR/fax.tif'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "convert" -d 'Convert a bilevel TIFF to TIFF-F (MH = Profile S, MR/MMR = Profile F), resampling when the resolution changes'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "tiff-check" -d 'Check TIFF files against RFC 3949 Profile S (or F): every violation with page and field; exit 1 on any'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "queue" -d 'Look at and steer the spool: list, show, retry, cancel, purge'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "onramp" -d 'The onramp: `submit FILE... [--to ADDR]` queues files as received faxes'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "hash-password" -d 'Print a `smtp.users_file` line for USER; the password is read from standard input'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "token" -d 'REST API tokens: `create USER` prints a new token once and keeps only its hash in `http.tokens_file`'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "offramp-check" -d 'Show what would be faxed for an email (parts taken and skipped, options, page count or the failure the sender would be told); optionally write the pages as TIFF-F'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "render" -d 'Render PDF, TIFF, pictures, text and HTML into fax pages: a TIFF-F (and PNG previews)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "setup" -d 'First run: find the fax modems, ask for the mail domain, relay and admin address, and write a checked configuration to /etc/faxgate/faxgate.toml (or --config FILE), shown as a diff and never replaced without a yes'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "generate-docs" -d 'Write the man pages and the bash/zsh/fish completions under DIR (the Debian package\'s are made with `generate-docs systemd/debian`)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and not __fish_seen_subcommand_from run status check-config modem send receive convert tiff-check queue onramp hash-password token offramp-check render setup generate-docs help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from modem" -f -a "probe" -d 'Initialise the modem on DEV and print what it offers (identity, classes, speeds)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from modem" -f -a "emulate" -d 'Be a Class 2.0 (T.32) fax modem on a pseudo-terminal linked at PATH, carrying its calls through the Class 1 modem on DEV with faxgate\'s T.30 engine. Host software (mgetty\'s sendfax, HylaFAX, faxgate with a Class 2.0 profile) opens PATH as its modem and sends (ATD, +FDT) or receives: DEV\'s rings are reported as RING and answered on ATA (or after ATS0=n rings) when the host has set AT+FCR=1. Runs until killed'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "list" -d 'List queued jobs (with --all also done and failed ones)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "show" -d 'Print a job\'s record (JSON) and payload files'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "retry" -d 'Make a queued job due now, or bring a failed one back; its limits start afresh'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "cancel" -d 'Give a queued job up (it moves to `failed/` as cancelled)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "purge" -d 'Remove archived jobs past their retention (`spool.keep_done`, `spool.keep_failed`)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from queue" -f -a "crash-child" -d 'Test helper: own the spool and create, commit, update and finish jobs in a loop, printing each acknowledged step, until killed (the crash test SIGKILLs it)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from onramp" -f -a "submit" -d 'Queue files as received faxes (routed and mailed by the running daemon)'
complete -c faxgate -n "__fish_faxgate_using_subcommand help; and __fish_seen_subcommand_from token" -f -a "create" -d 'Make a new API token for USER and print it (once; only its hash is kept)'
