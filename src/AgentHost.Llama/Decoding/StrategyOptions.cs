using System.Globalization;

namespace AgentHost.Llama.Decoding;

/// <summary>
/// Strategy-specific settings as key/value text (from the command line, configuration or a chat
/// request's additional properties). A strategy reads its keys with typed getters; a value that
/// does not parse, or a key no strategy read, is a clear <see cref="AgentHostException"/>.
/// </summary>
public sealed class StrategyOptions
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    /// <summary>Creates the options from key/value pairs.</summary>
    public StrategyOptions(IEnumerable<KeyValuePair<string, string>>? values = null)
        => _values = new Dictionary<string, string>(values ?? [], StringComparer.Ordinal);

    /// <summary>No options.</summary>
    public static StrategyOptions Empty => new();

    /// <summary>The raw values.</summary>
    public IReadOnlyDictionary<string, string> Values => _values;

    /// <summary>A string value, or <paramref name="fallback"/>.</summary>
    public string GetString(string key, string fallback) => Read(key) ?? fallback;

    /// <summary>A whole number in [min, max], or <paramref name="fallback"/>.</summary>
    public int GetInt(string key, int fallback, int min, int max = int.MaxValue)
    {
        var text = Read(key);
        if (text is null)
            return fallback;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value) || value < min || value > max)
            throw Invalid(key, text, max == int.MaxValue ? $"a whole number of at least {min}" : $"a whole number from {min} to {max}");
        return value;
    }

    /// <summary>A finite number in [min, max], or <paramref name="fallback"/>.</summary>
    public float GetFloat(string key, float fallback, float min = float.MinValue, float max = float.MaxValue)
    {
        var text = Read(key);
        if (text is null)
            return fallback;
        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !float.IsFinite(value) || value < min || value > max)
            throw Invalid(key, text, $"a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        return value;
    }

    /// <summary>A finite number in [min, max], or null when not given.</summary>
    public float? GetFloat(string key, float min = float.MinValue, float max = float.MaxValue)
        => Read(key) is null ? null : GetFloat(key, 0, min, max);

    /// <summary>Throws when a key was given that the strategy <paramref name="strategy"/> did not read.</summary>
    public void EnsureAllRead(string strategy)
    {
        foreach (var key in _values.Keys)
        {
            if (!_read.Contains(key))
                throw new AgentHostException(ErrorKind.InvalidArgument, $"Option '{key}' does not apply to decoding strategy '{strategy}'.") { Parameter = key };
        }
    }

    private string? Read(string key)
    {
        _read.Add(key);
        return _values.TryGetValue(key, out var value) ? value : null;
    }

    private static AgentHostException Invalid(string key, string text, string expected)
        => new(ErrorKind.InvalidArgument, $"Option '{key}' must be {expected}, not '{text}'.") { Parameter = key };
}
