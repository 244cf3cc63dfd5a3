/** Test helpers shared by every MIE package (private, consumed as source). */
export { typeScriptBlocks, runExample, packageReadme } from './readme-examples';
export { runModuleTest, collectTensors, type ModuleTestOptions, type ConfigurableModule, type InputFactory } from './run-module-test';
