import { Command } from 'commander';
import { registerAddCommand, registerQueryCommand } from './bulk/command.ts';
import { registerClusterCommand } from './cluster/command.ts';
import { registerImportCommands } from './import/command.ts';
import { registerReplicaCommand } from './replication/command.ts';
import { registerServeCommand } from './server/command.ts';
import { registerSignatureCommand } from './signature/command.ts';

const program = new Command();
program.name('haarseek').description('imgSeek-compatible reverse image search daemon');
registerSignatureCommand(program);
registerServeCommand(program);
registerClusterCommand(program);
registerReplicaCommand(program);
registerImportCommands(program);
registerAddCommand(program);
registerQueryCommand(program);

await program.parseAsync(process.argv);
