namespace AgentHost.Plugins.Tests;

/// <summary>A clock stopped at one instant, in a chosen local time zone.</summary>
internal sealed class FixedTimeProvider(DateTimeOffset utcNow, TimeZoneInfo localTimeZone) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => utcNow;

    public override TimeZoneInfo LocalTimeZone => localTimeZone;
}
