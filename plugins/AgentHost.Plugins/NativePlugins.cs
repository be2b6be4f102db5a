namespace AgentHost.Plugins;

/// <summary>The catalog of native plugins by the name they are configured and imported under.</summary>
public static class NativePlugins
{
    /// <summary>Creates one instance of every native plugin, keyed by plugin name (case-insensitive).</summary>
    /// <param name="timeProvider">The clock for <see cref="TimePlugin"/>; the system clock when null.</param>
    /// <param name="filesRoot">The folder <see cref="FilePlugin"/> is confined to; without one there is no <c>Files</c> plugin.</param>
    /// <returns><c>Math</c>, <c>Time</c>, <c>Text</c>, and <c>Files</c> when <paramref name="filesRoot"/> is given.</returns>
    public static IReadOnlyDictionary<string, object> Create(TimeProvider? timeProvider = null, string? filesRoot = null)
    {
        var plugins = new Dictionary<string, object>(StringComparer.OrdinalIgnoreCase)
        {
            ["Math"] = new MathPlugin(),
            ["Time"] = new TimePlugin(timeProvider),
            ["Text"] = new TextPlugin(),
        };
        if (!string.IsNullOrEmpty(filesRoot))
            plugins["Files"] = new FilePlugin(filesRoot);
        return plugins;
    }
}
