import { Command } from 'commander';
import { registerSignatureCommand } from './signature/command.ts';

const program = new Command();
program.name('haarseek').description('imgSeek-compatible reverse image search daemon');
registerSignatureCommand(program);

await program.parseAsync(process.argv);
