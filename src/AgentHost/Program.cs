using AgentHost.Cli;

return await CliApp.RunAsync(args);
