namespace AgentHost.Plugins;

/// <summary>The catalog of native plugins by the name they are configured and imported under.</summary>
public static class NativePlugins
{
    /// <summary>Creates one instance of every native plugin, keyed by plugin name (case-insensitive).</summary>
    /// <param name="timeProvider">The clock for <see cref="TimePlugin"/>; the system clock when null.</param>
    /// <returns><c>Math</c>, <c>Time</c> and <c>Text</c>.</returns>
    public static IReadOnlyDictionary<string, object> Create(TimeProvider? timeProvider = null) =>
        new Dictionary<string, object>(StringComparer.OrdinalIgnoreCase)
        {
            ["Math"] = new MathPlugin(),
            ["Time"] = new TimePlugin(timeProvider),
            ["Text"] = new TextPlugin(),
        };
}
