export {
  alternate,
  compare,
  formatTable,
  median,
  percentile,
  type Comparison,
  type Round,
} from './stats';
export * from './chain';
