using ConfigSpec.Verifier;

return await VerifierCli.RunAsync(args, Console.Out, Console.Error).ConfigureAwait(false);
