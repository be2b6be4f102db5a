using Microsoft.Extensions.Time.Testing;

namespace AgentHost.Plugins.Tests;

public class TimePluginTests
{
    // 2026-11-28 23:30 UTC is already Sunday 2026-11-29 at UTC+02:00.
    private static readonly DateTimeOffset _instant = new(2026, 11, 28, 23, 30, 15, TimeSpan.Zero);
    private static readonly TimeZoneInfo _plusTwo = TimeZoneInfo.CreateCustomTimeZone("Test+2", TimeSpan.FromHours(2), "Test+2", "Test+2");

    private readonly TimePlugin _time = new(StoppedClock());

    [Fact]
    public void Now_and_today_use_the_injected_clock_and_zone()
    {
        Assert.Equal("2026-11-29T01:30:15+02:00", _time.Now());
        Assert.Equal("2026-11-28T23:30:15Z", _time.UtcNow());
        Assert.Equal("2026-11-29", _time.Today());
    }

    [Fact]
    public void Defaults_to_the_system_clock()
    {
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        var now = DateTimeOffset.Parse(new TimePlugin().UtcNow(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(now, before, DateTimeOffset.UtcNow.AddSeconds(1));
    }

    [Theory]
    [InlineData("2026-11-28", "Saturday")]
    [InlineData("2000-02-29", "Tuesday")]
    [InlineData(" 1970-01-01 ", "Thursday")]
    public void Day_of_week(string date, string expected) => Assert.Equal(expected, _time.DayOfWeek(date));

    [Theory]
    [InlineData("2026-11-28", 3, "2026-12-01")]
    [InlineData("2026-03-01", -1, "2026-02-28")]
    [InlineData("2024-03-01", -1, "2024-02-29")]
    [InlineData("2026-12-31", 1, "2027-01-01")]
    public void Add_days(string date, int days, string expected) => Assert.Equal(expected, _time.AddDays(date, days));

    [Theory]
    [InlineData("2026-01-31", 1, "2026-02-28")]
    [InlineData("2026-11-28", -12, "2025-11-28")]
    public void Add_months(string date, int months, string expected) => Assert.Equal(expected, _time.AddMonths(date, months));

    [Theory]
    [InlineData("2026-01-01", "2026-12-25", 358)]
    [InlineData("2026-12-25", "2026-01-01", -358)]
    [InlineData("2024-02-28", "2024-03-01", 2)]
    public void Days_between(string start, string end, int expected) => Assert.Equal(expected, _time.DaysBetween(start, end));

    [Theory]
    [InlineData("28/11/2026")]
    [InlineData("2026-13-01")]
    [InlineData("2026-02-30")]
    [InlineData("tomorrow")]
    [InlineData("")]
    public void Bad_dates_are_clear_errors(string date)
    {
        var error = Assert.Throws<ArgumentException>(() => _time.DayOfWeek(date));
        Assert.Equal($"'{date}' is not a date in the form yyyy-MM-dd (e.g. 2026-11-28).", error.Message);
    }

    [Fact]
    public void Dates_out_of_range_are_clear_errors()
    {
        var error = Assert.Throws<ArgumentException>(() => _time.AddDays("9999-12-31", 1));
        Assert.Contains("outside the supported dates", error.Message);
        Assert.Throws<ArgumentException>(() => _time.AddMonths("0001-01-01", -1));
    }

    /// <summary>A clock stopped at <see cref="_instant"/> in the UTC+02:00 zone.</summary>
    private static FakeTimeProvider StoppedClock()
    {
        var clock = new FakeTimeProvider(_instant);
        clock.SetLocalTimeZone(_plusTwo);
        return clock;
    }
}
