namespace AgentHost.Cli;

/// <summary>A CLI verb.</summary>
internal interface ICommand
{
    string Name { get; }

    string Summary { get; }

    IReadOnlyList<OptionSpec> Options { get; }

    /// <summary>Runs the verb; returns the process exit code.</summary>
    Task<int> RunAsync(CommandLine line, CancellationToken cancellationToken);
}
