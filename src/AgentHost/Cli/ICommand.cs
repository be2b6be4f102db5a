using System.CommandLine;

namespace AgentHost.Cli;

/// <summary>A CLI verb: its words, help, options (declared once, often shared with other verbs) and what it does.</summary>
internal interface ICommand
{
    /// <summary>The verb: one word (<c>generate</c>), or a group and a word (<c>analyze rollouts</c>).</summary>
    string Name { get; }

    string Summary { get; }

    /// <summary>The options and arguments, in help order.</summary>
    IReadOnlyList<Symbol> Options { get; }

    /// <summary>Runs the verb on a parse without errors; returns the process exit code.</summary>
    Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken);
}
