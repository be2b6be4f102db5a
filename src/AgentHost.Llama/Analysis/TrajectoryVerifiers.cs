using System.Globalization;
using System.Text.RegularExpressions;

namespace AgentHost.Llama.Analysis;

/// <summary>The built-in verifiers and the <c>kind:argument</c> syntax the CLI (and later HTTP) uses for them.</summary>
public static class TrajectoryVerifiers
{
    private static readonly TimeSpan _regexTimeout = TimeSpan.FromSeconds(2);

    // A number as written in an answer: optional sign, digits with optional thousands commas, optional decimals.
    private static readonly Regex _number = new(@"-?\d[\d,]*(?:\.\d+)?", RegexOptions.CultureInvariant, _regexTimeout);

    /// <summary>The kinds <see cref="Parse"/> accepts, with their meaning.</summary>
    public static IReadOnlyList<(string Kind, string Help)> Kinds { get; } =
    [
        ("contains", "contains:TEXT passes when the response contains TEXT (case-insensitive)"),
        ("not-contains", "not-contains:TEXT passes when it does not"),
        ("regex", "regex:PATTERN passes when the .NET regular expression matches"),
        ("answer", "answer:NUMBER passes when the last number in the response equals NUMBER"),
    ];

    /// <summary>Passes when the response contains <paramref name="text"/> (ordinal, case-insensitive).</summary>
    public static ITrajectoryVerifier Contains(string text)
    {
        Guard.Require(!string.IsNullOrEmpty(text), "The text of a 'contains' verifier is empty.");
        return Create($"contains \"{text}\"", (_, response) => response.Contains(text, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Passes when the response does not contain <paramref name="text"/> (ordinal, case-insensitive).</summary>
    public static ITrajectoryVerifier NotContains(string text)
    {
        Guard.Require(!string.IsNullOrEmpty(text), "The text of a 'not-contains' verifier is empty.");
        return Create($"does not contain \"{text}\"", (_, response) => !response.Contains(text, StringComparison.OrdinalIgnoreCase));
    }

    /// <summary>Passes when the regular expression matches somewhere in the response.</summary>
    public static ITrajectoryVerifier Matches(string pattern)
    {
        Guard.Require(!string.IsNullOrEmpty(pattern), "The pattern of a 'regex' verifier is empty.");
        Regex regex;
        try
        {
            regex = new Regex(pattern, RegexOptions.CultureInvariant, _regexTimeout);
        }
        catch (ArgumentException e)
        {
            throw new AgentHostException(ErrorKind.InvalidArgument, $"The verifier pattern '{pattern}' is not a valid regular expression: {e.Message}", e);
        }
        return Create($"matches /{pattern}/", (_, response) =>
        {
            try
            {
                return regex.IsMatch(response);
            }
            catch (RegexMatchTimeoutException e)
            {
                throw new AgentHostException(ErrorKind.InvalidArgument, $"The verifier pattern '{pattern}' took longer than {_regexTimeout.TotalSeconds} s on a response; simplify it.", e);
            }
        });
    }

    /// <summary>Passes when the last number in the response equals <paramref name="expected"/> (the GSM8K convention).</summary>
    public static ITrajectoryVerifier Answer(string expected)
    {
        Guard.Require(TryParseNumber(expected, out var value), $"The expected answer '{expected}' is not a number.");
        return Create($"last number is {expected}", (_, response) => LastNumber(response) == value);
    }

    /// <summary>Passes when every verifier passes (checked in order, stopping at the first failure).</summary>
    public static ITrajectoryVerifier All(IReadOnlyList<ITrajectoryVerifier> verifiers)
    {
        ArgumentNullException.ThrowIfNull(verifiers);
        Guard.Require(verifiers.Count > 0, "At least one verifier is needed.");
        return verifiers.Count == 1 ? verifiers[0] : new AllVerifier([.. verifiers]);
    }

    /// <summary>A verifier from a synchronous predicate over (prompt, response).</summary>
    public static ITrajectoryVerifier Create(string description, Func<string, string, bool> predicate)
    {
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(predicate);
        return new DelegateVerifier(description, predicate);
    }

    /// <summary>
    /// Parses <c>kind:argument</c> (see <see cref="Kinds"/>), e.g. <c>contains:dog</c>, <c>regex:\bcat\b</c>,
    /// <c>answer:42</c>. Everything after the first colon is the argument.
    /// </summary>
    public static ITrajectoryVerifier Parse(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var colon = spec.IndexOf(':', StringComparison.Ordinal);
        var kind = colon < 0 ? spec : spec[..colon];
        var argument = colon < 0 ? "" : spec[(colon + 1)..];
        return kind.ToLowerInvariant() switch
        {
            "contains" => Contains(argument),
            "not-contains" => NotContains(argument),
            "regex" => Matches(argument),
            "answer" => Answer(argument),
            _ => throw new AgentHostException(ErrorKind.InvalidArgument,
                $"Unknown verifier '{spec}'; use one of: {string.Join("; ", Kinds.Select(k => k.Help))}."),
        };
    }

    /// <summary>The last number written in <paramref name="text"/>, or null when it holds none.</summary>
    public static decimal? LastNumber(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        decimal? last = null;
        foreach (Match match in _number.Matches(text))
        {
            if (TryParseNumber(match.Value, out var value))
                last = value;
        }
        return last;
    }

    private static bool TryParseNumber(string text, out decimal value)
        => decimal.TryParse(text.Replace(",", "", StringComparison.Ordinal).TrimEnd('.'), NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint,
            CultureInfo.InvariantCulture, out value);

    private sealed class DelegateVerifier(string description, Func<string, string, bool> predicate) : ITrajectoryVerifier
    {
        public string Description => description;

        public ValueTask<bool> VerifyAsync(string prompt, string response, CancellationToken cancellationToken)
            => ValueTask.FromResult(predicate(prompt, response));
    }

    private sealed class AllVerifier(ITrajectoryVerifier[] verifiers) : ITrajectoryVerifier
    {
        public string Description => string.Join(" and ", verifiers.Select(v => v.Description));

        public async ValueTask<bool> VerifyAsync(string prompt, string response, CancellationToken cancellationToken)
        {
            foreach (var verifier in verifiers)
            {
                if (!await verifier.VerifyAsync(prompt, response, cancellationToken).ConfigureAwait(false))
                    return false;
            }
            return true;
        }
    }
}
