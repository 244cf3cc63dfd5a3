/** Test helpers shared by every MIE package (private, consumed as source). */
export { typeScriptBlocks, runExample, packageReadme } from './readme-examples';
export { runModuleTest, type ModuleTestOptions } from './run-module-test';
export { withInputScale } from './test-modules';
export { withEnvironment } from './environment';
export {
  backendAgreement,
  collectTensors,
  type AgreementResult,
  type BackendAgreementOptions,
  type ConfigurableModule,
  type InputFactory,
  type ModuleCall,
} from './backend-agreement';
