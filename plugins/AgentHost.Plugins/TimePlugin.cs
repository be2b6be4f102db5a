using System.ComponentModel;
using System.Globalization;
using Microsoft.SemanticKernel;

namespace AgentHost.Plugins;

/// <summary>
/// Date and time skills. Dates are ISO 8601 (<c>yyyy-MM-dd</c>) strings, which every model writes and
/// reads reliably; the clock and the local time zone come from an injectable <see cref="TimeProvider"/>.
/// </summary>
/// <param name="timeProvider">The clock and time zone; <see cref="TimeProvider.System"/> when null.</param>
public sealed class TimePlugin(TimeProvider? timeProvider = null)
{
    /// <summary>The date format every function reads and writes.</summary>
    public const string DateFormat = "yyyy-MM-dd";

    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;

    /// <summary>The local date and time with its UTC offset, e.g. <c>2026-11-28T16:04:05+01:00</c>.</summary>
    /// <returns>The ISO 8601 timestamp.</returns>
    [KernelFunction]
    [Description("Returns the current local date and time in ISO 8601 with the UTC offset, e.g. 2026-11-28T16:04:05+01:00.")]
    public string Now() => _time.GetLocalNow().ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture);

    /// <summary>The UTC date and time, e.g. <c>2026-11-28T15:04:05Z</c>.</summary>
    /// <returns>The ISO 8601 timestamp.</returns>
    [KernelFunction]
    [Description("Returns the current UTC date and time in ISO 8601, e.g. 2026-11-28T15:04:05Z.")]
    public string UtcNow() => _time.GetUtcNow().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    /// <summary>Today's local date.</summary>
    /// <returns>The date as <c>yyyy-MM-dd</c>.</returns>
    [KernelFunction]
    [Description("Returns today's local date as yyyy-MM-dd.")]
    public string Today() => Format(DateOnly.FromDateTime(_time.GetLocalNow().DateTime));

    /// <summary>The English name of the day of the week of <paramref name="date"/>.</summary>
    /// <param name="date">A <c>yyyy-MM-dd</c> date.</param>
    /// <returns>For example <c>Saturday</c>.</returns>
    [KernelFunction]
    [Description("Returns the day of the week (e.g. Saturday) of a date.")]
    public string DayOfWeek([Description("The date as yyyy-MM-dd.")] string date) => Parse(date).DayOfWeek.ToString();

    /// <summary>Adds days to a date.</summary>
    /// <param name="date">A <c>yyyy-MM-dd</c> date.</param>
    /// <param name="days">Days to add; negative goes back.</param>
    /// <returns>The new date as <c>yyyy-MM-dd</c>.</returns>
    [KernelFunction]
    [Description("Adds a number of days to a date (negative to go back) and returns the new date as yyyy-MM-dd.")]
    public string AddDays([Description("The date as yyyy-MM-dd.")] string date, [Description("The number of days to add; negative goes back.")] int days)
    {
        var start = Parse(date);
        return Shift(start, () => start.AddDays(days), $"{days} days");
    }

    /// <summary>Adds calendar months to a date (the day is clamped to the month's length).</summary>
    /// <param name="date">A <c>yyyy-MM-dd</c> date.</param>
    /// <param name="months">Months to add; negative goes back.</param>
    /// <returns>The new date as <c>yyyy-MM-dd</c>.</returns>
    [KernelFunction]
    [Description("Adds a number of calendar months to a date (negative to go back; 2026-01-31 plus 1 month is 2026-02-28) and returns yyyy-MM-dd.")]
    public string AddMonths([Description("The date as yyyy-MM-dd.")] string date, [Description("The number of months to add; negative goes back.")] int months)
    {
        var start = Parse(date);
        return Shift(start, () => start.AddMonths(months), $"{months} months");
    }

    /// <summary>The number of days from <paramref name="start"/> to <paramref name="end"/>.</summary>
    /// <param name="start">A <c>yyyy-MM-dd</c> date.</param>
    /// <param name="end">A <c>yyyy-MM-dd</c> date.</param>
    /// <returns>Days; negative when <paramref name="end"/> is earlier.</returns>
    [KernelFunction]
    [Description("Returns the number of days from start to end (negative when end is earlier than start).")]
    public int DaysBetween([Description("The first date as yyyy-MM-dd.")] string start, [Description("The second date as yyyy-MM-dd.")] string end) =>
        Parse(end).DayNumber - Parse(start).DayNumber;

    private static string Format(DateOnly date) => date.ToString(DateFormat, CultureInfo.InvariantCulture);

    private static DateOnly Parse(string date)
    {
        ArgumentNullException.ThrowIfNull(date);
        return DateOnly.TryParseExact(date.Trim(), DateFormat, CultureInfo.InvariantCulture, DateTimeStyles.None, out var value)
            ? value
            : throw new ArgumentException($"'{date}' is not a date in the form {DateFormat} (e.g. 2026-11-28).");
    }

    private static string Shift(DateOnly start, Func<DateOnly> shift, string amount)
    {
        try
        {
            return Format(shift());
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new ArgumentException($"{Format(start)} plus {amount} is outside the supported dates (years 1 to 9999).");
        }
    }
}
