using AgentHost.Llama.Models;

namespace AgentHost.Cli;

/// <summary>
/// Progress on stderr (downloads, stand-in builds, training): a redrawn bar on a terminal, a line per quarter when
/// stderr is redirected. A download or build labels itself and ends its bar when it reaches its size.
/// </summary>
internal sealed class ConsoleProgressBar(string? label = null) : IProgress<DownloadProgress>
{
    private const int Width = 30;
    private readonly Lock _gate = new();
    private int _lastQuarter = -1;
    private bool _drawn;

    public void Report(DownloadProgress value)
    {
        var fraction = value.TotalBytes is > 0 ? Math.Clamp((double)value.BytesReceived / value.TotalBytes.Value, 0, 1) : (double?)null;
        var size = value.TotalBytes is { } total ? $"{Megabytes(value.BytesReceived)}/{Megabytes(total)} MB" : $"{Megabytes(value.BytesReceived)} MB";
        Show(fraction, size, label ?? (value.IsBuild ? "building" : "downloading"));
        if (fraction == 1)
            Finish();
    }

    /// <summary>Shows <paramref name="fraction"/> done (null: unknown) with a short detail text.</summary>
    public void Show(double? fraction, string detail) => Show(fraction, detail, label ?? "");

    public void Finish()
    {
        lock (_gate)
        {
            if (_drawn)
                Console.Error.WriteLine();
            _drawn = false;
        }
    }

    private void Show(double? fraction, string detail, string what)
    {
        lock (_gate)
        {
            if (Console.IsErrorRedirected)
            {
                var quarter = fraction is { } f ? (int)(f * 4) : _lastQuarter + 1;
                if (quarter == _lastQuarter)
                    return;
                _lastQuarter = quarter;
                Console.Error.WriteLine(fraction is { } p ? $"{what}: {Percent(p)} ({detail})" : $"{what}: {detail}");
                return;
            }
            var bar = fraction is { } g ? new string('#', (int)(g * Width)).PadRight(Width) : new string('?', Width);
            Console.Error.Write($"\r{what} [{bar}] {(fraction is { } h ? Percent(h).PadLeft(4) : "")} {detail}   ");
            _drawn = true;
        }
    }

    private static string Percent(double fraction) => ((int)(fraction * 100)).ToString(System.Globalization.CultureInfo.InvariantCulture) + "%";

    private static string Megabytes(long bytes) => (bytes / 1_000_000.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);
}
