/** A bad route or request field, named as in the API (route.next_hop, prefix, ...). */
export class InvalidRouteError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'InvalidRouteError';
  }
}

export class RouteExistsError extends Error {
  constructor(readonly prefix: string) {
    super(`a static route for ${prefix} already exists; delete it first`);
    this.name = 'RouteExistsError';
  }
}

export class RouteNotFoundError extends Error {
  constructor(
    readonly prefix: string,
    readonly connected: boolean,
  ) {
    super(
      connected
        ? `${prefix} is a connected route; it follows the interface addresses and cannot be deleted`
        : `there is no static route for ${prefix}`,
    );
    this.name = 'RouteNotFoundError';
  }
}
