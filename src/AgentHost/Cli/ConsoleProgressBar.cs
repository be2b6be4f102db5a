using AgentHost.Llama.Models;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace AgentHost.Cli;

/// <summary>
/// Progress on stderr (downloads, stand-in builds, training, analysis phases). On an interactive terminal it is a
/// Spectre.Console live progress bar sized to the window (colour unless <c>NO_COLOR</c> is set); when stderr is
/// redirected, or the terminal cannot redraw, it is plain text: a line per quarter, <c>label: 50% (detail)</c>, with no
/// ANSI escapes and no animation. A download or build labels itself and ends its bar when it reaches its size.
/// </summary>
internal sealed class ConsoleProgressBar(string? label = null) : IProgress<DownloadProgress>
{
    private readonly Lock _gate = new();
    private readonly IAnsiConsole? _live = Live();
    private int _lastQuarter = -1;
    private Task? _running;
    private ProgressTask? _task;
    private TaskCompletionSource? _done;

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

    /// <summary>Ends the bar (its last state stays on screen); a later report starts a new one.</summary>
    public void Finish()
    {
        Task? running;
        lock (_gate)
        {
            running = _running;
            _done?.TrySetResult();
            _running = null;
            _task = null;
            _done = null;
            _lastQuarter = -1;
        }
        running?.GetAwaiter().GetResult();
    }

    private void Show(double? fraction, string detail, string what)
    {
        lock (_gate)
        {
            if (_live is null)
            {
                var quarter = fraction is { } f ? (int)(f * 4) : _lastQuarter + 1;
                if (quarter == _lastQuarter)
                    return;
                _lastQuarter = quarter;
                Console.Error.WriteLine(fraction is { } p ? $"{what}: {Percent(p)} ({detail})" : $"{what}: {detail}");
                return;
            }
            var task = _task ??= Start(what);
            task.Description = Markup.Escape(what);
            task.Tag = detail;
            task.IsIndeterminate = fraction is null;
            if (fraction is { } g)
                task.Value = g;
        }
    }

    /// <summary>Starts a live display on a background thread and returns its one task once it exists.</summary>
    private ProgressTask Start(string what)
    {
        var ready = new TaskCompletionSource<ProgressTask>(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = _done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var progress = _live!.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new DetailColumn());
        _running = Task.Run(() => progress.StartAsync(async context =>
        {
            ready.SetResult(context.AddTask(Markup.Escape(what), maxValue: 1));
            await done.Task;
            context.Refresh();
        }));
        return ready.Task.GetAwaiter().GetResult();
    }

    /// <summary>A console for a live bar on stderr, or null where progress must be plain lines (redirected, no ANSI, not interactive).</summary>
    private static IAnsiConsole? Live()
    {
        if (Console.IsErrorRedirected)
            return null;
        var console = CliConsole.Error();
        return console.Profile.Capabilities is { Ansi: true, Interactive: true } ? console : null;
    }

    private static string Percent(double fraction) => ((int)(fraction * 100)).ToString(System.Globalization.CultureInfo.InvariantCulture) + "%";

    private static string Megabytes(long bytes) => (bytes / 1_000_000.0).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>The task's detail text (sizes, epoch and loss), kept in its <see cref="ProgressTask.Tag"/>.</summary>
    private sealed class DetailColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) => new Text(task.Tag as string ?? "");
    }
}
