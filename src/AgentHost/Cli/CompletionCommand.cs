using System.CommandLine;

namespace AgentHost.Cli;

/// <summary>
/// <c>completion bash|zsh</c>: prints a shell script that completes agenthost's verbs, options and values by asking
/// agenthost itself through System.CommandLine's <c>[suggest:POSITION]</c> directive.
/// </summary>
internal sealed class CompletionCommand : ICommand
{
    private static readonly Argument<string> _shell = new("shell")
    {
        Description = "The shell: bash or zsh.",
        HelpName = "bash|zsh",
        CompletionSources = { "bash", "zsh" },
    };

    public string Name => "completion";

    public string Summary => "Print a shell completion script: eval \"$(agenthost completion bash)\" (or zsh) in your shell's rc file.";

    public IReadOnlyList<Symbol> Options { get; } = [_shell];

    public Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        Console.Out.Write(parse.GetValue(_shell) switch
        {
            "bash" => Bash,
            "zsh" => Zsh,
            var other => throw CliOption.Usage($"completion: the shell must be bash or zsh, not '{other}'."),
        });
        return Task.FromResult(CliApp.ExitOk);
    }

    private const string Bash = """
        _agenthost_complete() {
            local IFS=$'\n'
            COMPREPLY=($(agenthost "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null))
        }
        complete -o default -F _agenthost_complete agenthost

        """;

    private const string Zsh = """
        _agenthost_complete() {
            local -a candidates
            candidates=("${(@f)$(agenthost "[suggest:${CURSOR}]" "${BUFFER}" 2>/dev/null)}")
            compadd -a candidates
        }
        compdef _agenthost_complete agenthost

        """;
}
