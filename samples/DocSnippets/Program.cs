// Runs one generated doc snippet by its "file:line" (a block with the default "program" wrapper), or lists them.
if (args.Length == 0 || !DocSnippets.Snippets.All.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine("usage: DocSnippets <file:line>; runnable snippets:");
    foreach (var name in DocSnippets.Snippets.All.Keys)
        Console.Error.WriteLine("  " + name);
    return 2;
}
await run();
return 0;
