//! The VPC: a new one (two zones, public subnets with a NAT gateway each, private subnets for
//! the tasks, an S3 gateway endpoint) or an existing one's private subnets.

use crate::aws::network::{
    ElasticIp, GatewayAttachment, GatewayEndpoint, InternetGateway, NatGateway, Route, RouteTable,
    Subnet, SubnetRouteTableAssociation, Tag, Vpc,
};
use crate::options::Network;
use crate::template::{Expr, Resource, Template};

/// Zones a new VPC spans.
const ZONES: usize = 2;

/// The VPC the services run in.
pub struct Placement {
    /// The VPC.
    pub vpc_id: Expr,
    /// The private subnets of the tasks and the load balancer.
    pub private_subnets: Vec<Expr>,
}

/// Adds a new VPC, or names the existing one.
pub fn add(template: &mut Template, network: &Network) -> Placement {
    match network {
        Network::Existing {
            vpc_id,
            private_subnet_ids,
        } => Placement {
            vpc_id: vpc_id.as_str().into(),
            private_subnets: private_subnet_ids
                .iter()
                .map(|s| s.as_str().into())
                .collect(),
        },
        Network::New => new_vpc(template),
    }
}

fn name(suffix: &str) -> Vec<Tag> {
    Tag::name(Expr::sub(format!("${{AWS::StackName}}-{suffix}")))
}

fn new_vpc(template: &mut Template) -> Placement {
    let vpc = template.resource(
        "Vpc",
        Resource::new(&Vpc {
            cidr_block: "10.0.0.0/16".into(),
            enable_dns_support: true,
            enable_dns_hostnames: true,
            tags: name("vpc"),
        }),
    );
    let gateway = template.resource(
        "InternetGateway",
        Resource::new(&InternetGateway { tags: name("igw") }),
    );
    template.resource(
        "InternetGatewayAttachment",
        Resource::new(&GatewayAttachment {
            vpc_id: vpc.clone(),
            internet_gateway_id: gateway.clone(),
        }),
    );
    let public_routes = template.resource(
        "PublicRouteTable",
        Resource::new(&RouteTable {
            vpc_id: vpc.clone(),
            tags: name("public"),
        }),
    );
    template.resource(
        "PublicDefaultRoute",
        Resource::new(&Route {
            route_table_id: public_routes.clone(),
            destination_cidr_block: "0.0.0.0/0".into(),
            gateway_id: Some(gateway),
            nat_gateway_id: None,
        })
        .depends_on(&["InternetGatewayAttachment"]),
    );

    let mut private_subnets = Vec::new();
    let mut private_tables = Vec::new();
    for zone in 0..ZONES {
        let n = zone + 1;
        let public = template.resource(
            &format!("PublicSubnet{n}"),
            Resource::new(&Subnet {
                vpc_id: vpc.clone(),
                cidr_block: format!("10.0.{zone}.0/24").into(),
                availability_zone: Expr::az(zone),
                map_public_ip_on_launch: false,
                tags: name(&format!("public-{n}")),
            }),
        );
        template.resource(
            &format!("PublicSubnet{n}RouteTableAssociation"),
            Resource::new(&SubnetRouteTableAssociation {
                subnet_id: public.clone(),
                route_table_id: public_routes.clone(),
            }),
        );
        let address = format!("NatAddress{n}");
        template.resource(
            &address,
            Resource::new(&ElasticIp {
                domain: "vpc",
                tags: name(&format!("nat-{n}")),
            })
            .depends_on(&["InternetGatewayAttachment"]),
        );
        // One NAT per zone: a zone's tasks keep their egress when the other zone fails.
        let nat = template.resource(
            &format!("NatGateway{n}"),
            Resource::new(&NatGateway {
                subnet_id: public,
                allocation_id: Expr::att(&address, "AllocationId"),
                tags: name(&format!("nat-{n}")),
            }),
        );
        let private = template.resource(
            &format!("PrivateSubnet{n}"),
            Resource::new(&Subnet {
                vpc_id: vpc.clone(),
                cidr_block: format!("10.0.{}.0/24", zone + ZONES).into(),
                availability_zone: Expr::az(zone),
                map_public_ip_on_launch: false,
                tags: name(&format!("private-{n}")),
            }),
        );
        let table = template.resource(
            &format!("PrivateRouteTable{n}"),
            Resource::new(&RouteTable {
                vpc_id: vpc.clone(),
                tags: name(&format!("private-{n}")),
            }),
        );
        template.resource(
            &format!("PrivateDefaultRoute{n}"),
            Resource::new(&Route {
                route_table_id: table.clone(),
                destination_cidr_block: "0.0.0.0/0".into(),
                gateway_id: None,
                nat_gateway_id: Some(nat),
            }),
        );
        template.resource(
            &format!("PrivateSubnet{n}RouteTableAssociation"),
            Resource::new(&SubnetRouteTableAssociation {
                subnet_id: private.clone(),
                route_table_id: table.clone(),
            }),
        );
        private_subnets.push(private);
        private_tables.push(table);
    }
    // Package files are the bulk of the traffic: keep them off the NAT's per-GiB charge.
    template.resource(
        "S3GatewayEndpoint",
        Resource::new(&GatewayEndpoint {
            vpc_id: vpc.clone(),
            service_name: Expr::sub("com.amazonaws.${AWS::Region}.s3"),
            vpc_endpoint_type: "Gateway",
            route_table_ids: private_tables,
        }),
    );
    Placement {
        vpc_id: vpc,
        private_subnets,
    }
}
