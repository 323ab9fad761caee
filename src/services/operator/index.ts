export { Operator, type OperatorOptions } from './operator.js'
export { ProfileProcess, PROFILE_STATES, type ProfileState, type ProfileSpec, type ProfileProcessStatus } from './profile-process.js'
