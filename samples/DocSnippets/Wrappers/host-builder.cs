using Microsoft.Extensions.Hosting;
// Wrapper "host-builder": a generic host app's builder (var builder = Host.CreateApplicationBuilder(args);).
internal static class __NAME__
{
    public static async Task RunAsync()
    {
        var builder = Host.CreateApplicationBuilder();
/*SNIPPET*/
    }
}
