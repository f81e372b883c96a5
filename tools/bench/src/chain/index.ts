export * from './bench';
export * from './idle';
export * from './report';
export * from './search';
export * from './stalls';
