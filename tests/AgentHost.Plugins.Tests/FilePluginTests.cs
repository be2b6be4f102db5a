namespace AgentHost.Plugins.Tests;

public sealed class FilePluginTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("agenthost-files-").FullName;
    private readonly string _root;
    private readonly FilePlugin _files;

    public FilePluginTests()
    {
        // <temp>/root is the workspace; <temp>/secret.txt lies outside it.
        _root = Path.Combine(_temp, "root");
        Directory.CreateDirectory(Path.Combine(_root, "notes", "old"));
        File.WriteAllText(Path.Combine(_root, "readme.txt"), "hello");
        File.WriteAllText(Path.Combine(_root, "notes", "todo.txt"), "\uFEFFbuy milk\nwalk the dog");
        File.WriteAllText(Path.Combine(_temp, "secret.txt"), "top secret");
        Directory.CreateDirectory(Path.Combine(_temp, "outside"));
        File.WriteAllText(Path.Combine(_temp, "outside", "data.txt"), "outside data");
        _files = new FilePlugin(_root);
    }

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public void Reads_and_lists_inside_the_root()
    {
        Assert.Equal("hello", _files.ReadFile("readme.txt"));
        Assert.Equal("buy milk\nwalk the dog", _files.ReadFile("notes/todo.txt"));
        Assert.Equal("buy milk\nwalk the dog", _files.ReadFile("./notes/../notes/todo.txt")); // stays inside: allowed
        Assert.Equal("notes/\nreadme.txt", _files.ListFiles());
        Assert.Equal("notes/\nreadme.txt", _files.ListFiles(""));
        Assert.Equal("old/\ntodo.txt", _files.ListFiles("notes"));
    }

    [Theory]
    [InlineData("../secret.txt")]
    [InlineData("notes/../../secret.txt")]
    [InlineData("..")]
    [InlineData("../outside/data.txt")]
    [InlineData("../root-evil/x.txt")]     // a sibling whose name starts with the root's name
    public void DotDotCannotLeaveTheRoot(string path)
    {
        var error = Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile(path));
        Assert.Equal($"The path '{path}' is outside the workspace.", error.Message);
        Assert.Throws<UnauthorizedAccessException>(() => _files.ListFiles(path));
    }

    [Fact]
    public void Absolute_paths_outside_the_root_are_refused()
    {
        Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile(Path.Combine(_temp, "secret.txt")));
        Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("/etc/passwd"));
        // An absolute path that is inside the root is just a path inside the root.
        Assert.Equal("hello", _files.ReadFile(Path.Combine(_root, "readme.txt")));
    }

    [Fact]
    public void Symbolic_links_are_not_followed()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "secret-link.txt"), Path.Combine(_temp, "secret.txt"));
        Directory.CreateSymbolicLink(Path.Combine(_root, "notes", "escape"), Path.Combine(_temp, "outside"));
        File.CreateSymbolicLink(Path.Combine(_root, "inside-link.txt"), Path.Combine(_root, "readme.txt"));

        Assert.Contains("symbolic link", Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("secret-link.txt")).Message);
        Assert.Contains("symbolic link", Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("notes/escape/data.txt")).Message);
        Assert.Contains("symbolic link", Assert.Throws<UnauthorizedAccessException>(() => _files.ListFiles("notes/escape")).Message);
        Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("inside-link.txt"));
        // Links are left out of listings.
        Assert.Equal("notes/\nreadme.txt", _files.ListFiles());
        Assert.Equal("old/\ntodo.txt", _files.ListFiles("notes"));
    }

    [Fact]
    public void A_root_that_is_a_link_is_resolved_once()
    {
        var link = Path.Combine(_temp, "root-link");
        Directory.CreateSymbolicLink(link, _root);
        var files = new FilePlugin(link);
        Assert.Equal(_root, files.Root);
        Assert.Equal("hello", files.ReadFile("readme.txt"));
    }

    [Fact]
    public void Missing_large_and_binary_files_are_clear_errors()
    {
        Assert.Equal("There is no file 'nope.txt'.", Assert.Throws<FileNotFoundException>(() => _files.ReadFile("nope.txt")).Message);
        Assert.Equal("There is no folder 'nope'.", Assert.Throws<DirectoryNotFoundException>(() => _files.ListFiles("nope")).Message);
        Assert.Throws<FileNotFoundException>(() => _files.ReadFile("notes")); // a folder is not a file

        File.WriteAllBytes(Path.Combine(_root, "big.txt"), new byte[FilePlugin.MaxReadBytes + 1]);
        Assert.Contains("at most 262144 are read", Assert.Throws<InvalidOperationException>(() => _files.ReadFile("big.txt")).Message);
        File.WriteAllBytes(Path.Combine(_root, "image.bin"), [0x89, 0x50, 0x00, 0x47]);
        Assert.Equal("The file 'image.bin' is not a text file.", Assert.Throws<InvalidOperationException>(() => _files.ReadFile("image.bin")).Message);
        Assert.Throws<ArgumentException>(() => _files.ReadFile("readme.txt\0../secret.txt"));
    }

    private static readonly TimeSpan _hangGuard = TimeSpan.FromSeconds(30);

    private static void Run(string program, params string[] arguments)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(program, arguments) { UseShellExecute = false })!;
        process.WaitForExit();
        Assert.Equal(0, process.ExitCode);
    }

    [Fact]
    public async Task A_fifo_is_refused_at_once_instead_of_blocking()
    {
        Run("mkfifo", Path.Combine(_root, "pipe.txt"));

        var error = await Task.Run(() => Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("pipe.txt"))).WaitAsync(_hangGuard);

        Assert.Equal("The file 'pipe.txt' is not a regular file (a FIFO, device or socket), so it is not read.", error.Message);
        Assert.Equal("hello", _files.ReadFile("readme.txt")); // and the plugin goes on
    }

    [Fact]
    public void A_hard_link_to_a_file_outside_the_root_is_refused()
    {
        Run("ln", Path.Combine(_temp, "secret.txt"), Path.Combine(_root, "innocent.txt"));

        var error = Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("innocent.txt"));

        Assert.Equal("The file 'innocent.txt' has 2 hard links, which could lead outside the workspace, so it is not read.", error.Message);
        Assert.DoesNotContain("top secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Devices_and_symlinked_devices_are_refused()
    {
        File.CreateSymbolicLink(Path.Combine(_root, "zero"), "/dev/zero");
        Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("zero"));
        Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("/dev/zero"));
        Assert.Throws<UnauthorizedAccessException>(() => _files.ReadFile("../../../../../../dev/zero"));
    }

    [Fact]
    public async Task A_huge_sparse_file_is_refused_without_being_read()
    {
        using (var huge = File.Create(Path.Combine(_root, "huge.txt")))
            huge.SetLength(8L << 30);

        var error = await Task.Run(() => Assert.Throws<InvalidOperationException>(() => _files.ReadFile("huge.txt"))).WaitAsync(_hangGuard);

        Assert.Equal($"The file 'huge.txt' has {8L << 30} bytes; at most {FilePlugin.MaxReadBytes} are read.", error.Message);
    }

    [Fact]
    public void A_listing_stops_at_the_entry_limit_and_says_so()
    {
        var crowded = Path.Combine(_root, "crowded");
        Directory.CreateDirectory(crowded);
        for (var i = 0; i < FilePlugin.MaxListEntries + 50; i++)
            File.WriteAllText(Path.Combine(crowded, $"f{i:D5}.txt"), "");

        var lines = _files.ListFiles("crowded").Split('\n');

        Assert.Equal(FilePlugin.MaxListEntries + 1, lines.Length);
        Assert.Equal($"(listing cut at {FilePlugin.MaxListEntries} entries)", lines[^1]);
        Assert.All(lines[..^1], l => Assert.Matches(@"^f\d{5}\.txt$", l));
    }

    [Fact]
    public void The_root_must_exist() =>
        Assert.Throws<DirectoryNotFoundException>(() => new FilePlugin(Path.Combine(_temp, "missing")));

    [Fact]
    public void The_catalog_offers_files_only_with_a_root()
    {
        Assert.False(NativePlugins.Create().ContainsKey("Files"));
        Assert.IsType<FilePlugin>(NativePlugins.Create(filesRoot: _root)["files"]);
    }
}
